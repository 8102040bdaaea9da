"""What reaches a human's screen: only what the CLI wrote itself acts on the terminal.

The rule, for every CLI command: a value the CLI did not write itself (from the model, a
target, the inventory, the settings, the database or an exception) is shown as plain text.
It is never parsed as rich markup (`[/]`, `[conceal]`, `[link=...]` are just characters),
and every character that `str.isprintable` rejects is shown as a visible escape instead of
being sent to the terminal: C0 controls with ESC and newline (`\\x1b`, `\\n`, `\\r`, `\\t`),
DEL and the C1 controls (`\\x7f`, `\\x9b`), Unicode format characters with the bidi
overrides and isolates and zero-width characters (`\\u202e`, `\\u2066`, `\\u200b`), line
and paragraph separators, no-break and other non-ASCII spaces (`\\u2028`, `\\xa0`),
private-use, unassigned and lone surrogate code points. A value can then neither move the
cursor, erase, set a title or a link, hide or reorder text, nor start a line of its own
that could pass for a field of the screen. A backslash is shown as it is; on a colour
terminal the escapes are drawn in reverse video, so `\\x1b` the escape and `\\x1b` the
four characters look different.

The approval console's pages follow the same rule through `runs` (console/pages.py: each
escape HTML-escaped and marked as one).

Multi-line text from a target (a preview's output) is the one deliberate layout: `lines`
splits it on newline only and shows each line, itself made visible, behind a marker, so
that no line can start where a field label does.

The same predicate, `unprintable`, is the MCP server's rule for free text a tool accepts
(a proposal's rationale), with the reason codes of the target's first gate for requests
(system/lib/mcp_infra_target/screen.py): `control_char` (Cc), `unicode_format_char` (Cf)
and `non_printable_char` (anything else `str.isprintable` rejects).
"""

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Console
from rich.text import Text

ESCAPE_STYLE = "reverse"
LINE_MARK = "┊ "
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

Part = str | Text | tuple[str, str]


@dataclass(frozen=True)
class Unprintable:
    """The first character of a text that may not reach a screen as it is."""

    reason: str
    char: str
    offset: int

    @property
    def detail(self) -> str:
        return (f"U+{ord(self.char):04X} ({unicodedata.category(self.char)}) at offset "
                f"{self.offset}")

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


def unprintable(text: str) -> Unprintable | None:
    """The first character `str.isprintable` rejects, with the target's reason code."""
    for offset, char in enumerate(text):
        if char.isprintable():
            continue
        category = unicodedata.category(char)
        reason = {"Cc": "control_char", "Cf": "unicode_format_char"}.get(
            category, "non_printable_char")
        return Unprintable(reason, char, offset)
    return None


FREE_TEXT_RULE = ("printable text on one line: no control characters (newline and tab "
                  "included), no Unicode format characters (bidi overrides, zero-width) and "
                  "no other non-printable characters")


def free_text_refusal(name: str, text: str) -> str | None:
    """Why `text`, free text kept for a person to read (a rationale, a reason), is refused,
    or None when it is printable on one line."""
    bad = unprintable(text)
    if bad is None:
        return None
    return f"{name} refused: {bad.reason}: {bad.detail}; it must be {FREE_TEXT_RULE}"


def escape(char: str) -> str:
    """`\\n`, `\\x1b`, `\\u202e`, `\\U000e0041`: how one non-printable character is shown."""
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def runs(value: object) -> Iterator[tuple[str, bool]]:
    """`value` as runs of (text, is_escape): printable text as it is, each non-printable
    character as its visible escape. The one rule every screen uses (terminal and console)."""
    text = value if isinstance(value, str) else str(value)
    run: list[str] = []
    for char in text:
        if char.isprintable():
            run.append(char)
            continue
        if run:
            yield "".join(run), False
            run = []
        yield escape(char), True
    if run:
        yield "".join(run), False


def visible(value: object) -> str:
    """`value` as plain text with every non-printable character escaped."""
    return "".join(piece for piece, _ in runs(value))


def plain(value: object, style: str = "") -> Text:
    """A rich Text of `value` made visible (never markup); escapes in reverse video."""
    out = Text(style=style)
    for piece, escaped in runs(value):
        out.append(piece, style=ESCAPE_STYLE if escaped else None)
    return out


def line(*parts: Part) -> Text:
    """One Text from parts: a str is shown plain, a (str, style) pair plain in that style, a
    Text (built by this module) as it is. Nothing is ever read as markup."""
    out = Text()
    for part in parts:
        if isinstance(part, Text):
            out.append_text(part)
        elif isinstance(part, tuple):
            out.append_text(plain(part[0], part[1]))
        else:
            out.append_text(plain(part))
    return out


def lines(text: str, mark: str = LINE_MARK, style: str = "") -> Text:
    """Multi-line text from elsewhere: one screen line per `\\n`-separated line, each made
    visible and behind `mark`, so none can pass for a label or a line of the CLI's own."""
    return Text("\n").join(line((mark, "dim"), (piece, style)) for piece in text.split("\n"))


def console(stderr: bool = False) -> Console:
    """A Console that reads no markup, emoji codes or highlighting in any str it is given
    (a second guard: every caller passes Text built here)."""
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False)
