"""The two bodies an event is POSTed as: generic JSON, and a chat message `{"text": ...}`
that Slack and Mattermost incoming webhooks both take.

In the chat message nothing from the model, a target or the database becomes markup: every
such value is first made visible (display.visible: control, bidi and other non-printable
characters become escapes such as `\\n` or `\\u202e`, so a value is one line of plain
characters), then escaped for Slack's mrkdwn (`&`, `<`, `>`), so that `<!channel>`,
`<@U123>` or `<https://x|click>` in a rationale are shown, not acted on. Two characters
act in Mattermost's markdown even as plain text, and become their visible fullwidth forms:
every `@` becomes `＠` (U+FF20), so that no mention in any spelling (`@channel`, `@here`,
`@all`, `@alice`) pings anyone, and every `[` becomes `［` (U+FF3B), so that no
`[text](url)` link or `![](url)` image is made. Classes of characters, not lists of names:
no value may mention or link, so there is nothing to keep up to date.
"""

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mcp_linux_infra.display import visible
from mcp_linux_infra.notify.events import EVENTS

PRODUCT = "mcp-linux-infra"
_MRKDWN = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"),  # & first
           ("@", "\uff20"), ("[", "\uff3b"))


def mrkdwn(value: object) -> str:
    """`value` as inert text in a Slack/Mattermost message."""
    text = visible(value)
    for char, entity in _MRKDWN:
        text = text.replace(char, entity)
    return text


def approvals(proposal: Any) -> dict[str, Any]:
    """{have, need, by}: the distinct principals so far, and how many the proposal needs."""
    by = list(dict.fromkeys(proposal.principals))
    return {"have": len(by), "need": proposal.required, "by": by}


def summary(proposal: Any) -> dict[str, Any]:
    return {"id": proposal.id, "host": proposal.host, "action": proposal.action,
            "params": dict(proposal.params), "state": proposal.state,
            "rationale": proposal.rationale, "note": getattr(proposal, "note", None),
            "reason": getattr(proposal, "reason", None), "approvals": approvals(proposal)}


def iso(at: datetime) -> str:
    """ISO 8601 in UTC, to the second: 2026-12-05T03:18:24Z."""
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def json_body(event: str, proposal: Any, link: str, at: datetime) -> dict[str, Any]:
    return {"event": event, "at": iso(at), "proposal": summary(proposal), "link": link}


def slack_body(event: str, proposal: Any, link: str, at: datetime) -> dict[str, Any]:
    p = summary(proposal)
    count = p["approvals"]
    params = ", ".join(f"{mrkdwn(k)}={mrkdwn(v)}" for k, v in sorted(p["params"].items()))
    lines = [f"[{PRODUCT}] Proposal {mrkdwn(p['id'])} {EVENTS[event]}: "
             f"{mrkdwn(p['action'])} on {mrkdwn(p['host'])}",
             f"Params: {params or 'none'}",
             f"Rationale: {mrkdwn(p['rationale'])}",
             f"Approvals: {count['have']} of {count['need']}"
             + (f" ({', '.join(mrkdwn(b) for b in count['by'])})" if count["by"] else "")]
    if p["note"]:
        lines.append(f"Note: {mrkdwn(p['note'])}")
    if p["reason"]:
        lines.append(f"Reason: {mrkdwn(p['reason'])}")
    lines.append(f"<{mrkdwn(link)}|Open it in the approval console> (at {iso(at)})")
    return {"text": "\n".join(lines)}


FORMATS: dict[str, Callable[[str, Any, str, datetime], dict[str, Any]]] = {
    "json": json_body, "slack": slack_body}


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")
