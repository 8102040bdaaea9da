"""Labels a client picks: trace ids (`mcp:trace=ID`, accepted first by both tiers and carried
into their audit records), batch entry ids and session frame ids; one shape for all."""
from __future__ import annotations

import re

from mcp_infra_target.core.refusal import Refusal

LABEL = re.compile(r"[A-Za-z0-9._-]{1,64}")
TRACE_PREFIX = "mcp:trace="
RULE = "request/reserved"


def take_trace(words: list[str]) -> tuple[str | None, list[str]]:
    """(trace id or None, the words after it) of a request's words; `bad_trace_id` when the
    first word is a trace prefix with an id of another shape."""
    if not words or not words[0].startswith(TRACE_PREFIX):
        return None, words
    trace = words[0][len(TRACE_PREFIX):]
    if not LABEL.fullmatch(trace):
        raise Refusal("bad_trace_id", RULE, "trace ids match %s" % LABEL.pattern)
    return trace, words[1:]
