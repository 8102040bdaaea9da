"""Approval envelopes and signed documents: parsing, canonical form, schema, time window.

Envelope v2 (stdin of pra-run): {"document": STRING, "signatures": [ARMORED, ...], "step"?: N,
"trace"?: ID}; envelope v1: {"document": STRING, "signature": ARMORED, "trace"?: ID}.
Document v2: {v: 2, id, steps: [{host, action, params, nonce}, ...], not_before, not_after,
approvals}; document v1 (one release of compatibility): {v: 1, proposal, host, action,
params, nonce, not_before, not_after, approver}. Canonical = json.dumps(sort_keys=True,
separators=(",", ":"), ensure_ascii=False) in UTF-8. A document that is not byte-identical to
its own canonical form is refused, so each meaning has exactly one signed byte string.
`signed` gives both versions one shape: the id, the steps, the window, the approvals asked
for, and v1's approver.
"""
from __future__ import annotations

import json
import re
from typing import Any

from mcp_infra_target.core import stdin, strictjson
from mcp_infra_target.core.refusal import LABEL, Refusal

NAMESPACE = "mcp-linux-infra-approval"
ENVELOPE_MAX_BYTES = 65536
# pra-exec may add a "trace" member to an envelope it accepted at ENVELOPE_MAX_BYTES
ENVELOPE_READ_MAX_BYTES = ENVELOPE_MAX_BYTES + 256
ENVELOPE_KEYS = {1: frozenset(("document", "signature", "trace")),
                 2: frozenset(("document", "signatures", "step", "trace"))}
DOCUMENT_KEYS = frozenset(
    ("v", "proposal", "host", "action", "params", "nonce", "not_before", "not_after", "approver"))
DOCUMENT_V2_KEYS = frozenset(("v", "id", "steps", "not_before", "not_after", "approvals"))
KEYS_BY_VERSION = {1: DOCUMENT_KEYS, 2: DOCUMENT_V2_KEYS}
STEP_KEYS = frozenset(("host", "action", "params", "nonce"))
FIELD_RES = {
    "proposal": re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z"),
    "host": re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}\Z"),
    "action": re.compile(r"[a-z][a-z0-9_]{0,63}\Z"),
    "nonce": re.compile(r"[A-Za-z0-9_-]{16,64}\Z"),
    "approver": re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}\Z"),
}
FIELD_RES["id"] = FIELD_RES["proposal"]
PRINCIPAL_RE = FIELD_RES["approver"]
PARAM_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
MAX_PARAMS = 16
MAX_PARAM_CHARS = 4096
MAX_TIME = 2 ** 40
MAX_SIGNATURES = 16
MAX_STEPS = 64
MAX_APPROVALS = 9


def canonical(obj: Any) -> bytes:
    """The one byte string that is signed for `obj`."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def read_envelope(fd: int, limit: int, timeout: float) -> bytes:
    """Read `fd` to EOF within `timeout` (core.stdin); refuse more than `limit` bytes or a
    slow client."""
    try:
        return stdin.read_all(fd, limit, timeout)
    except stdin.InputTimeout:
        raise Refusal("bad_envelope", "envelope/read",
                      "no complete envelope within %d s" % timeout) from None
    except stdin.InputTooLarge:
        raise Refusal("bad_envelope", "envelope/size",
                      "envelope larger than %d bytes" % limit) from None


def parse_envelope(raw: bytes) -> dict[str, Any]:
    """Check the envelope's shape (v2, or v1 with its one signature); return {version,
    document, signatures, step, trace}."""
    try:
        envelope = strictjson.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refusal("bad_envelope", "envelope/json", "envelope is not a JSON object") from None
    if not isinstance(envelope, dict):
        raise Refusal("bad_envelope", "envelope/json", "envelope is not a JSON object")
    version = 2 if "signatures" in envelope or "step" in envelope else 1
    extra = set(envelope) - ENVELOPE_KEYS[version]
    if extra:
        raise Refusal("bad_envelope", "envelope/keys", "unknown envelope keys (allowed: %s)"
                      % ", ".join(sorted(ENVELOPE_KEYS[version])))
    trace = envelope.get("trace")
    if trace is not None and (not isinstance(trace, str) or not LABEL.fullmatch(trace)):
        raise Refusal("bad_envelope", "envelope/trace", "trace must match %s" % LABEL.pattern)
    if not isinstance(envelope.get("document"), str):
        raise Refusal("bad_envelope", "envelope/document", "document must be a string")
    signatures = envelope.get("signatures") if version == 2 else [envelope.get("signature")]
    if signatures in (None, [], [None], [""]):
        raise Refusal("missing_signature", "envelope/signature", "no signature")
    if not isinstance(signatures, list) or not all(isinstance(s, str) for s in signatures):
        raise Refusal("bad_envelope", "envelope/signature", "signatures must be strings")
    if len(signatures) > MAX_SIGNATURES:
        raise Refusal("too_many_signatures", "envelope/signatures",
                      "more than %d signatures" % MAX_SIGNATURES)
    step = envelope.get("step", 0)
    if type(step) is not int or not 0 <= step < MAX_STEPS:
        raise Refusal("bad_envelope", "envelope/step", "step must be an index 0..%d"
                      % (MAX_STEPS - 1))
    return {"version": version, "document": envelope["document"], "signatures": signatures,
            "step": step, "trace": trace}


def _field(value: Any, field: str, where: str) -> None:
    if not isinstance(value, str) or not FIELD_RES[field].match(value):
        raise Refusal("bad_document", where, "malformed " + field)


def _params(params: Any, where: str) -> None:
    if not isinstance(params, dict) or len(params) > MAX_PARAMS or not all(
            PARAM_NAME_RE.match(k) and isinstance(v, str) and len(v) <= MAX_PARAM_CHARS
            for k, v in params.items()):
        raise Refusal("bad_document", where,
                      "params must be an object of at most %d short strings" % MAX_PARAMS)


def _steps(steps: Any) -> list[dict[str, Any]]:
    if not isinstance(steps, list) or not 0 < len(steps) <= MAX_STEPS:
        raise Refusal("bad_document", "document/steps", "1..%d steps expected" % MAX_STEPS)
    for index, step in enumerate(steps):
        where = "document/steps/%d" % index
        if not isinstance(step, dict) or set(step) != STEP_KEYS:
            raise Refusal("bad_document", where,
                          "a step has exactly the keys %s" % sorted(STEP_KEYS))
        for field in ("host", "action", "nonce"):
            _field(step[field], field, where + "/" + field)
        _params(step["params"], where + "/params")
    if len({step["nonce"] for step in steps}) != len(steps):
        raise Refusal("bad_document", "document/steps", "nonces must be distinct")
    return steps


def parse_document(text: str) -> dict[str, Any]:
    """Parse the signed document (v1 or v2), refuse any non-canonical form, check every
    field's syntax; return it as it is."""
    try:
        signed = text.encode("utf-8")
        doc = strictjson.loads(text)
        again = canonical(doc)
    except (UnicodeEncodeError, ValueError, RecursionError):
        raise Refusal("bad_document", "document/json", "document is not JSON text") from None
    if again != signed:
        raise Refusal("not_canonical", "document/canonical",
                      "document is not in canonical form (sorted keys, no spaces, UTF-8)")
    version = doc.get("v") if isinstance(doc, dict) else None
    if type(version) is not int or version not in KEYS_BY_VERSION:
        raise Refusal("bad_document", "document/v", "unsupported document version")
    if set(doc) != KEYS_BY_VERSION[version]:
        raise Refusal("bad_document", "document/keys", "document must have exactly the keys %s"
                      % sorted(KEYS_BY_VERSION[version]))
    for field in ("not_before", "not_after"):
        value = doc[field]
        if type(value) is not int or not 0 < value < MAX_TIME:
            raise Refusal("bad_document", "document/" + field, field + " must be a Unix time")
    if version == 1:
        for field in ("proposal", "host", "action", "nonce", "approver"):
            _field(doc[field], field, "document/" + field)
        _params(doc["params"], "document/params")
        return doc
    _field(doc["id"], "id", "document/id")
    approvals = doc["approvals"]
    if type(approvals) is not int or not 1 <= approvals <= MAX_APPROVALS:
        raise Refusal("bad_document", "document/approvals",
                      "approvals must be an integer 1..%d" % MAX_APPROVALS)
    _steps(doc["steps"])
    return doc


def signed(doc: dict[str, Any]) -> dict[str, Any]:
    """A parsed document of either version as {v, id, steps, not_before, not_after,
    approvals, approver (v1 only, else None)}: a v1 document is one step asking for one
    approval by its approver."""
    if doc["v"] == 1:
        return {"v": 1, "id": doc["proposal"], "approvals": 1, "approver": doc["approver"],
                "not_before": doc["not_before"], "not_after": doc["not_after"],
                "steps": [{k: doc[k] for k in STEP_KEYS}]}
    return dict(doc, approver=None)


def check_window(doc: dict[str, Any], now: int, skew: int, max_window: int) -> None:
    """Refuse a window that is inverted, too long, not yet open (beyond `skew`) or over."""
    window = doc["not_after"] - doc["not_before"]
    if window <= 0:
        raise Refusal("bad_window", "document/window", "not_after must be after not_before")
    if window > max_window:
        raise Refusal("window_too_long", "settings/max_window_seconds",
                      "window of %d s exceeds %d s" % (window, max_window))
    if now + skew < doc["not_before"]:
        raise Refusal("not_yet_valid", "document/not_before", "approval is not valid yet")
    if now > doc["not_after"]:
        raise Refusal("expired", "document/not_after", "approval has expired")

