"""Approval envelopes and signed documents: parsing, canonical form, schema, time window.

Envelope (stdin of pra-run): {"document": STRING, "signature": ARMORED, "trace"?: ID}.
Document: canonical JSON {v, proposal, host, action, params, nonce, not_before, not_after,
approver}; canonical = json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
in UTF-8. A document that is not byte-identical to its own canonical form is refused, so
each meaning has exactly one signed byte string.
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
DOCUMENT_KEYS = frozenset(
    ("v", "proposal", "host", "action", "params", "nonce", "not_before", "not_after", "approver"))
FIELD_RES = {
    "proposal": re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z"),
    "host": re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}\Z"),
    "action": re.compile(r"[a-z][a-z0-9_]{0,63}\Z"),
    "nonce": re.compile(r"[A-Za-z0-9_-]{16,64}\Z"),
    "approver": re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}\Z"),
}
PARAM_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
MAX_PARAMS = 16
MAX_PARAM_CHARS = 4096
MAX_TIME = 2 ** 40


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
    """Check the envelope's shape; return {document, signature, trace}."""
    try:
        envelope = strictjson.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refusal("bad_envelope", "envelope/json", "envelope is not a JSON object") from None
    if not isinstance(envelope, dict):
        raise Refusal("bad_envelope", "envelope/json", "envelope is not a JSON object")
    extra = set(envelope) - {"document", "signature", "trace"}
    if extra:
        raise Refusal("bad_envelope", "envelope/keys",
                      "unknown envelope keys (allowed: document, signature, trace)")
    trace = envelope.get("trace")
    if trace is not None and (not isinstance(trace, str) or not LABEL.fullmatch(trace)):
        raise Refusal("bad_envelope", "envelope/trace", "trace must match %s" % LABEL.pattern)
    if not isinstance(envelope.get("document"), str):
        raise Refusal("bad_envelope", "envelope/document", "document must be a string")
    signature = envelope.get("signature")
    if signature is None or signature == "":
        raise Refusal("missing_signature", "envelope/signature", "no signature")
    if not isinstance(signature, str):
        raise Refusal("bad_envelope", "envelope/signature", "signature must be a string")
    return {"document": envelope["document"], "signature": signature, "trace": trace}


def parse_document(text: str) -> dict[str, Any]:
    """Parse the signed document, refuse any non-canonical form, check every field's syntax."""
    try:
        signed = text.encode("utf-8")
        doc = strictjson.loads(text)
        again = canonical(doc)
    except (UnicodeEncodeError, ValueError, RecursionError):
        raise Refusal("bad_document", "document/json", "document is not JSON text") from None
    if again != signed:
        raise Refusal("not_canonical", "document/canonical",
                      "document is not in canonical form (sorted keys, no spaces, UTF-8)")
    if not isinstance(doc, dict) or set(doc) != DOCUMENT_KEYS:
        raise Refusal("bad_document", "document/keys",
                      "document must have exactly the keys %s" % sorted(DOCUMENT_KEYS))
    if type(doc["v"]) is not int or doc["v"] != 1:
        raise Refusal("bad_document", "document/v", "unsupported document version")
    for field, pattern in FIELD_RES.items():
        if not isinstance(doc[field], str) or not pattern.match(doc[field]):
            raise Refusal("bad_document", "document/" + field, "malformed " + field)
    for field in ("not_before", "not_after"):
        value = doc[field]
        if type(value) is not int or not 0 < value < MAX_TIME:
            raise Refusal("bad_document", "document/" + field, field + " must be a Unix time")
    params = doc["params"]
    if not isinstance(params, dict) or len(params) > MAX_PARAMS or not all(
            PARAM_NAME_RE.match(k) and isinstance(v, str) and len(v) <= MAX_PARAM_CHARS
            for k, v in params.items()):
        raise Refusal("bad_document", "document/params",
                      "params must be an object of at most %d short strings" % MAX_PARAMS)
    return doc


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

