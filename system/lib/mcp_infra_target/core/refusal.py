"""Refusals: the one machine-readable shape every target tool uses to say no, and the labels
a client picks (trace ids, batch entry ids, session frame ids: one shape for all).

The MCP tier parses exactly one JSON line on stderr and exit code 126, so the shape lives
here once and every tool raises `Refusal` instead of printing its own message. The reason
codes of both tiers are one list, in system/README.md ("Refusal reasons").

Both tiers accept a first word `mcp:trace=ID` and carry ID into their audit records, so a
client's record and the target's join.
"""

import json
import re

EXIT_REFUSED = 126
EXIT_TIMEOUT = 124
LABEL = re.compile(r"[A-Za-z0-9._-]{1,64}")
TRACE_PREFIX = "mcp:trace="


class ClientGone(Exception):
    """The client closed the channel (`why` "closed") or did not read what it was sent
    before the request's deadline ("not_reading"): stop, audit why, say nothing more."""

    def __init__(self, why: str = "closed"):
        super().__init__(why)
        self.why = why


class Refusal(Exception):
    """A request that policy does not allow; `reason` is a stable code, `rule` names the rule."""

    def __init__(self, reason: str, rule: str, detail: str = "",
                 command: "str | None" = None):
        super().__init__(f"{reason} ({rule}): {detail}")
        self.reason = reason
        self.rule = rule
        self.detail = detail
        self.command = command

    def as_dict(self) -> dict:
        return {"reason": self.reason, "rule": self.rule, "detail": self.detail,
                "command": self.command}

    def json_line(self) -> str:
        """One line, ASCII only, so no client-supplied byte can break the line framing."""
        return json.dumps({"mcp_refusal": self.as_dict()}, ensure_ascii=True, sort_keys=True)


def emit(refusal: "Refusal", stream) -> int:
    """Write the refusal line to `stream` (a text stream, normally stderr); return exit code 126."""
    stream.write(refusal.json_line() + "\n")
    stream.flush()
    return EXIT_REFUSED


def take_trace(words: list) -> tuple:
    """(trace id or None, the words after it) of a request's words; `bad_trace_id` when the
    first word is the trace prefix with an id of another shape."""
    if not words or not words[0].startswith(TRACE_PREFIX):
        return None, words
    trace = words[0][len(TRACE_PREFIX):]
    if not LABEL.fullmatch(trace):
        raise Refusal("bad_trace_id", "request/reserved", f"trace ids match {LABEL.pattern}")
    return trace, words[1:]
