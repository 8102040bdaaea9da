"""The console's HTML, server-rendered: no inline script or style, every value inert.

The rule of the security review, as on the terminal (display.py): a value the console did not
write itself (from the model, a target or the database) is HTML-escaped, and each character
`str.isprintable` rejects (controls, bidi overrides, zero-width and other format characters)
is shown as its visible escape, marked `<span class="esc">`. The one exception is the
document operators sign, `<pre id="document">`: exactly its text, HTML-escaped, because the
page computes the signed blob from that text (console.js refuses to sign one that holds a
non-printable character; the server does not offer it).
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from mcp_linux_infra import display
from mcp_linux_infra.approvals.document import NAMESPACE
from mcp_linux_infra.console_links import proposal_path

ACTIVE = ("pending", "approved", "executing")


def h(value: object) -> str:
    """A value from elsewhere as inert HTML text."""
    return "".join(f'<span class="esc">{html.escape(piece)}</span>' if escaped
                   else html.escape(piece) for piece, escaped in display.runs(value))


def attr(value: object) -> str:
    """A value from elsewhere inside a double-quoted attribute."""
    return html.escape(display.visible(value), quote=True)


def multiline(text: str) -> str:
    """A target's output for a <pre>: one line per newline, each made inert."""
    return "\n".join(h(piece) for piece in text.split("\n"))


def when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def age(stamp: float, now: float | None = None) -> str:
    seconds = max(0, int((time.time() if now is None else now) - stamp))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def params(values: dict[str, Any]) -> str:
    if not values:
        return "(none)"
    return "<br>".join(f"<code>{h(k)}</code> = <code>{h(v)}</code>"
                       for k, v in sorted(values.items()))


def layout(title: str, body: str, *, operator: str | None = None, csrf: str | None = None,
           main_attrs: str = "") -> str:
    """A whole page; `body` and `main_attrs` are HTML this module built."""
    who = ""
    if operator is not None and csrf is not None:
        who = (f'<span class="who">signed in as <b>{h(operator)}</b></span>'
               f'<form method="post" action="/logout" class="inline">'
               f'<input type="hidden" name="csrf" value="{attr(csrf)}">'
               f'<button type="submit" id="logout">log out</button></form>')
    meta = f'<meta name="csrf" content="{attr(csrf)}">' if csrf is not None else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"{meta}<title>{h(title)} · mcp-linux-infra</title>"
            "<link rel=\"stylesheet\" href=\"/static/console.css\">"
            "<script src=\"/static/console.js\" defer></script></head><body>"
            f"<header><a href=\"/\">mcp-linux-infra approvals</a>{who}</header>"
            f"<main{main_attrs}>{body}</main></body></html>\n")


def message(title: str, code: str, text: str) -> str:
    return layout(title, f"<h1>{h(title)}</h1><p id=\"status\" class=\"error\" "
                         f"data-code=\"{attr(code)}\">{h(code)}: {h(text)}</p>")


def login(next_path: str) -> str:
    """`next_path`: the console's own path to open after the login."""
    return layout("Log in", "<h1>Log in</h1><p>Use the passkey or security key you enrolled."
                            "</p><button type=\"button\" id=\"login\">Log in with a passkey"
                            "</button><p id=\"status\" role=\"status\"></p><p id=\"message\"></p>",
                  main_attrs=f' id="login-page" data-next="{attr(next_path)}"')


def enroll(name: str, token: str) -> str:
    body = (f"<h1>Enroll {h(name)}</h1>"
            f"<p>Register a passkey or security key as operator <b>{h(name)}</b>. It will be "
            "trusted by targets only once an administrator deploys the key line below with "
            "the role (<code>mcp_infra_operators</code>).</p>"
            "<button type=\"button\" id=\"enroll\">Register a passkey</button>"
            "<p id=\"status\" role=\"status\"></p><p id=\"message\"></p>"
            "<section id=\"enrolled\" hidden><h2>Your key line</h2><pre id=\"key-line\"></pre>"
            "<h2>For the administrator (Ansible)</h2><pre id=\"ansible\"></pre></section>")
    return layout(f"Enroll {name}", body,
                  main_attrs=f' id="enroll-page" data-token="{attr(token)}"')


def _risk(p: Any) -> str:
    info = p.action_info or {}
    runs_as = info.get("runs_as", "?")
    return (f"changes {h(p.host)} as {h(runs_as)}; needs {h(p.required)} distinct "
            f"approval{'s' if p.required != 1 else ''}")


def _preview_summary(preview: dict | None) -> str:
    shown = preview or {}
    if not shown.get("available"):
        return f"<i>no preview: {h(shown.get('why', 'none was taken'))}</i>"
    exit_code = f" (exit {h(shown['exit_code'])})" if "exit_code" in shown else ""
    return f"<code>{h(shown.get('command', '?'))}</code>{exit_code}"


def proposal_list(rows: Iterable[Any], operator: str, csrf: str, now: float) -> str:
    lines = []
    for p in rows:
        info = p.action_info or {}
        lines.append(
            f'<tr data-proposal="{attr(p.id)}" class="state-{attr(p.state)}">'
            f'<td><a href="{attr(proposal_path(p.id))}">{h(p.id)}</a></td>'
            f"<td>{h(p.state)}</td><td>{h(p.host)}</td><td>{h(p.action)}</td>"
            f"<td>{h(info.get('description', ''))}</td><td>{params(p.params)}</td>"
            f'<td class="rationale">{h(p.rationale)}</td>'
            f"<td>{_preview_summary(p.preview)}</td><td>{_risk(p)}</td>"
            f"<td>{h(age(p.created_at, now))}</td><td>{h(p.count())}</td></tr>")
    table = ("<table id=\"proposals\"><thead><tr><th>id</th><th>state</th><th>host</th>"
             "<th>action</th><th>what it does</th><th>params</th><th>rationale</th>"
             "<th>preview</th><th>risk</th><th>age</th><th>approvals</th></tr></thead>"
             f"<tbody>{''.join(lines)}</tbody></table>")
    if not lines:
        table += "<p>No proposals.</p>"
    return layout("Proposals", f"<h1>Proposals</h1>{table}", operator=operator, csrf=csrf)


def _preview(preview: dict | None) -> str:
    shown = preview or {}
    if not shown.get("available"):
        return _preview_summary(shown)
    out = [f"<p>{_preview_summary(shown)} answered:</p>"]
    if shown.get("output"):
        out.append(f"<pre class=\"output\">{multiline(shown['output'])}</pre>")
    out.append(f"<p>{h(shown.get('explains', ''))}</p>")
    if shown.get("prediction"):
        out.append(f"<p><b>{h(shown['prediction'])}</b></p>")
    return "".join(out)


def _signed(document: str) -> str:
    """The fields of the document from its own text: what the passkey signs."""
    fields = json.loads(document)
    steps = "".join(f"<tr><td>{h(s.get('host'))}</td><td>{h(s.get('action'))}</td>"
                    f"<td>{params(s.get('params') or {})}</td><td><code>{h(s.get('nonce'))}"
                    "</code></td></tr>" for s in fields.get("steps", []))
    start, end = fields.get("not_before"), fields.get("not_after")
    return ("<table class=\"signed\"><thead><tr><th>host</th><th>action</th><th>params</th>"
            f"<th>nonce</th></tr></thead><tbody>{steps}</tbody></table>"
            f"<p>valid {h(when(start))} .. {h(when(end))}; asks for "
            f"{h(fields.get('approvals'))} approval(s)</p>")


def proposal_detail(p: Any, history: list[dict], operator: Any, csrf: str, rp_id: str,
                    status: str, now: float, problem: str | None = None) -> str:
    """`problem`: why no approval document could be made of the proposal (then nothing is
    offered for signing)."""
    info = p.action_info or {}
    rows = [("host", h(p.host)), ("action", (f"<b>{h(p.action)}</b> (runs as "
                                            f"{h(info.get('runs_as', '?'))})")),
            ("what it does", h(info.get("description", ""))), ("params", params(p.params)),
            ("rationale", f'<span class="rationale">{h(p.rationale)}</span>'),
            ("preview", _preview(p.preview)), ("risk", _risk(p)),
            ("proposed", (f"{h(when(p.created_at))} ({h(age(p.created_at, now))} ago) by "
                         f"{h(p.proposed_by or '?')}, trace {h(p.trace or '-')}"))]
    if p.reason:
        rows.append(("reason", h(p.reason)))
    if p.note:
        rows.append(("note", h(p.note)))
    fields = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
    approvals = "".join(f"<li>{h(a['principal'])} ({h(a.get('method'))}, "
                        f"{h(a.get('key_type'))}) at {h(when(a.get('at')))}</li>"
                        for a in p.approvals)
    body = [f"<h1>Proposal {h(p.id)} <span class=\"state\">{h(p.state)}</span></h1>",
            f"<table class=\"fields\">{fields}</table>",
            f"<h2>Approvals</h2><p id=\"approvals\">{h(p.count())}</p>",
            f"<ul>{approvals}</ul>"]
    if problem is not None:
        body.append(f"<p class=\"error\" id=\"problem\">This proposal cannot be approved: "
                    f"{h(problem)}</p>")
    document = p.document_text
    signable = (document is not None and display.unprintable(document) is None
                and p.state == "pending")
    if document is not None:
        warning = "" if display.unprintable(document) is None else (
            "<p class=\"error\">This document holds a non-printable character: it cannot be "
            "shown faithfully and is not offered for signing.</p>")
        heading = "You sign" if signable else "The approval document"
        body.append(f"<h2>{heading}</h2>{_signed(document)}{warning}"
                    f"<pre id=\"document\">{html.escape(document)}</pre>")
    already = operator.name in p.principals
    if signable and operator.credential_id and not already:
        body.append("<button type=\"button\" id=\"approve\">Approve with my passkey</button>")
    elif signable and already:
        body.append("<p>You approved this proposal.</p>")
    elif signable:
        body.append("<p>Your key is not a passkey of this console: approve with "
                    f"<code>mcp-linux-infra approvals approve {h(p.id)}</code>.</p>")
    if p.state in ("pending", "approved"):
        body.append(f'<form method="post" action="{attr(proposal_path(p.id))}/reject">'
                    f'<input type="hidden" name="csrf" value="{attr(csrf)}">'
                    "<label for=\"reject-reason\">Reason</label>"
                    "<textarea id=\"reject-reason\" name=\"reason\" required maxlength=\"500\">"
                    "</textarea><button type=\"submit\" id=\"reject\">Reject</button></form>")
    body.append(f"<p id=\"status\" role=\"status\">{h(status)}</p><p id=\"message\"></p>")
    steps = "".join(f"<tr><td>{h(when(t.get('at')))}</td><td>{h(t.get('event'))}</td>"
                    f"<td>{h(t.get('to_state') or '-')}</td><td>{h(t.get('actor'))}</td>"
                    f"<td>{h(t.get('note') or '')}</td></tr>" for t in history)
    body.append("<h2>History</h2><table id=\"history\"><thead><tr><th>at</th><th>event</th>"
                f"<th>state</th><th>by</th><th>note</th></tr></thead><tbody>{steps}</tbody>"
                "</table>")
    main = (f' id="proposal" data-proposal="{attr(p.id)}" data-rp-id="{attr(rp_id)}" '
            f'data-namespace="{attr(NAMESPACE)}" '
            f'data-credential="{attr(operator.credential_id or "")}"')
    return layout(f"Proposal {p.id}", "".join(body), operator=operator.name, csrf=csrf,
                  main_attrs=main)
