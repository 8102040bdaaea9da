"""POSIX shell-style word splitting, and nothing more.

The words are never given to a shell: quotes only group, `#` is a literal, `;`, `|`, `$(`
and backticks are ordinary characters that the typed validation will then refuse or
accept as plain data.
"""

import shlex

from mcp_infra_target.core.refusal import Refusal

RULE = "request/tokenise"


def split(text: str, max_tokens: int) -> list:
    """Split like `sh` would (quotes, backslash), without comments or punctuation handling."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=False)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError as error:
        raise Refusal("tokenise_error", RULE, str(error))
    if not tokens:
        raise Refusal("empty", RULE, "the request has no words")
    if len(tokens) > max_tokens:
        raise Refusal("too_many_tokens", RULE, "%d words, at most %d" % (len(tokens), max_tokens))
    return tokens
