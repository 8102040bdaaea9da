"""First gate: refuse a raw request before anything parses it.

Only printable text reaches the tokeniser: no control characters (tab and newline
included: the client joins argv with spaces, so a legitimate request never has them),
no Unicode format characters (bidi overrides, zero-width joiners), no other separators
(NBSP, line separators) and no invalid UTF-8. `str.isprintable` is exactly that rule.
"""

import unicodedata

from mcp_infra_target.core.refusal import Refusal

RULE = "request/screen"


def decode(raw_bytes: bytes) -> str:
    """Strict UTF-8 decoding; anything else is refused rather than guessed at."""
    try:
        return raw_bytes.decode("utf-8", "strict")
    except UnicodeDecodeError as error:
        raise Refusal("invalid_utf8", RULE, "byte %d is not valid UTF-8" % error.start)


def check(text: str, max_bytes: int) -> str:
    """Refuse empty, over-long and non-printable requests; return `text` unchanged."""
    if text.strip(" ") == "":
        raise Refusal("empty", RULE, "the request is empty")
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise Refusal("too_long", RULE, "%d bytes, at most %d" % (size, max_bytes))
    for index, char in enumerate(text):
        if char.isprintable():
            continue
        category = unicodedata.category(char)
        if category == "Cc":
            reason = "control_char"
        elif category == "Cf":
            reason = "unicode_format_char"
        else:
            reason = "non_printable_char"
        raise Refusal(reason, RULE, "U+%04X (%s) at offset %d" % (ord(char), category, index))
    return text
