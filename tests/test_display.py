"""The screen rule (display.py): untrusted text is plain and visible, never markup or a
terminal control; the same predicate as the target's first gate for requests."""

import io
import re

import pytest
from mcp_infra_target.readonly import screen
from rich.console import Console

from mcp_linux_infra import display
from mcp_linux_infra.approvals import cli as approvals_cli
from mcp_linux_infra.approvals.store import Proposal
from mcp_linux_infra.display import ESCAPE_STYLE, line, lines, plain, unprintable, visible

ALL = "".join(chr(c) for c in range(0x110000))  # every code point, lone surrogates included
# Any escape sequence a terminal acts on: CSI, OSC, DCS/SOS/PM/APC strings, single ESC
# commands, and the C1 forms of the same.
ESCAPE_SEQUENCE = re.compile("\x1b|[\x80-\x9f]")
SGR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.parametrize(("text", "shown"), [
    pytest.param("plain text, [bold]markup[/] and \\x1b", "plain text, [bold]markup[/] and \\x1b",
                 id="printable-unchanged"),
    pytest.param("a\nb\rc\td", r"a\nb\rc\td", id="newline-cr-tab"),
    pytest.param("\x00\x07\x08\x1b[2A\x1b]0;t\x07", r"\x00\x07\x08\x1b[2A\x1b]0;t\x07",
                 id="c0-and-esc"),
    pytest.param("\x7f\x85\x9b\x9d", r"\x7f\x85\x9b\x9d", id="del-and-c1"),
    pytest.param("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
                 r"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
                 id="bidi"),
    pytest.param("\u200b\u200c\u200d\u2060\ufeff\u00ad", r"\u200b\u200c\u200d\u2060\ufeff\xad",
                 id="zero-width-and-soft-hyphen"),
    pytest.param("\u2028\u2029\u00a0\u3000\u2007", r"\u2028\u2029\xa0\u3000\u2007",
                 id="separators-and-other-spaces"),
    pytest.param("\ue000\U000f0000\U000e0041\U000e007f\ud800", r"\ue000\U000f0000\U000e0041"
                 r"\U000e007f\ud800", id="private-tags-surrogate"),
    pytest.param("Größe ошибка 错误 👍 e\u0301", "Größe ошибка 错误 👍 e\u0301",
                 id="letters-emoji-combining"),
])
def test_visible(text, shown):
    assert visible(text) == shown
    assert plain(text).plain == shown


def test_every_code_point_is_printable_once_visible():
    shown = visible(ALL)
    assert shown.isprintable() and not ESCAPE_SEQUENCE.search(shown)
    for char in ALL:
        assert (visible(char) == char) is char.isprintable()


@pytest.mark.parametrize(("text", "reason", "detail"), [
    pytest.param("fine text [/]", None, None, id="printable"),
    pytest.param("ab\nc", "control_char", "U+000A (Cc) at offset 2", id="newline"),
    pytest.param("\x1b[1;1H", "control_char", "U+001B (Cc) at offset 0", id="esc"),
    pytest.param("x\x9b", "control_char", "U+009B (Cc) at offset 1", id="c1"),
    pytest.param("abc\u202e", "unicode_format_char", "U+202E (Cf) at offset 3", id="bidi"),
    pytest.param("a\u2029", "non_printable_char", "U+2029 (Zp) at offset 1", id="para-sep"),
    pytest.param("a\ud800", "non_printable_char", "U+D800 (Cs) at offset 1", id="surrogate"),
    pytest.param("a\U0010ffff", "non_printable_char", "U+10FFFF (Cn) at offset 1",
                 id="unassigned"),
])
def test_unprintable_names_the_reason_and_offset(text, reason, detail):
    bad = unprintable(text)
    if reason is None:
        assert bad is None
    else:
        assert (bad.reason, bad.detail) == (reason, detail)


def test_the_server_rule_is_the_targets_rule_for_every_code_point():
    """display.unprintable and the target's first gate refuse the same characters with the
    same reason codes (the server does not import the target library; this test does)."""
    for char in ALL:
        bad = unprintable("ab" + char)
        try:
            screen.check("ab" + char, 64)
            theirs = None
        except screen.Refusal as refusal:
            theirs = (refusal.reason, refusal.detail)
        except UnicodeEncodeError:  # a lone surrogate has no UTF-8 size; display refuses it
            assert bad is not None and bad.reason == "non_printable_char"
            continue
        assert (None if bad is None else (bad.reason, bad.detail)) == theirs, hex(ord(char))


def test_plain_is_never_markup_and_marks_only_the_escapes():
    text = plain("[bold red]x[/] [link=https://e.example]y[/link]\x1b", "green")
    assert text.plain == r"[bold red]x[/] [link=https://e.example]y[/link]\x1b"
    assert str(text.style) == "green"
    assert [(s.start, s.end, str(s.style)) for s in text.spans] == [
        (len(text.plain) - 4, len(text.plain), ESCAPE_STYLE)]


def test_line_and_lines():
    assert line("a", ("b\n", "bold"), plain("c")).plain == r"ab\nc"
    assert lines("one\n│ host  x\x1b[2A\r\nthree").plain.split("\n") == [
        "┊ one", r"┊ │ host  x\x1b[2A\r", "┊ three"]


def test_the_console_reads_no_markup_even_in_a_str():
    buffer = io.StringIO()
    console = display.console()
    console.file = buffer
    console.print("[/] [bold]x[/bold] :smile:")
    assert buffer.getvalue() == "[/] [bold]x[/bold] :smile:\n"


HOSTILE = ("x\x1b[2A\x1b[1;1H\x1b[2K\x1b]8;;https://evil.example/\x1b\\l\x1b]8;;\x1b\\"
           "\x1b]0;pwned\x07\u202e\u2066[/][conceal]c[/conceal][link=https://e.example]k[/link]"
           "\nhost lab-01\x9b2A\x7f\u2028")


def _render(renderable, width: int) -> str:
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=True, color_system="truecolor", width=width).print(
        renderable)
    return buffer.getvalue()


PANEL_LABELS = ("proposal", "host", "action", "params", "what it does", "rationale",
                "proposed", "preview", "approvals", "window", "reason", "note")
SIGNED_LABELS = ("proposal", "host", "action", "params", "nonce", "window", "approvals")


@pytest.mark.parametrize("width", [pytest.param(60, id="wrapping"), pytest.param(400, id="wide")])
def test_every_field_of_a_hostile_proposal_renders_with_colour_escapes_only(width):
    """Every string the approval screens show, hostile: in a colour terminal's output the
    only escape sequences are the CLI's own SGR colours (no cursor movement, erase, OSC
    title or link, no concealed text), and every line is one of the CLI's own rows or the
    continuation of one, indented under its value (so wrapping forges no row either)."""
    p = Proposal(id=HOSTILE, created_at=0.0, updated_at=0.0, state=HOSTILE, host=HOSTILE,
                 action=HOSTILE, params={HOSTILE: HOSTILE, "unit": "lab-app"},
                 rationale=HOSTILE,
                 preview={"available": True, "command": HOSTILE, "explains": HOSTILE,
                          "exit_code": HOSTILE, "output": HOSTILE, "prediction": HOSTILE},
                 action_info={"description": HOSTILE, "runs_as": HOSTILE}, max_window=60,
                 required=2, proposed_by=HOSTILE, trace=HOSTILE, document_text=HOSTILE,
                 nonce=HOSTILE, not_before=0, not_after=60, reason=HOSTILE, executor=None,
                 sent_at=None, result=None, note=HOSTILE,
                 approvals=[{"principal": HOSTILE, "method": HOSTILE, "at": 0.0,
                             "key_type": HOSTILE}])
    fields = {"v": 2, "id": HOSTILE, "not_before": 0, "not_after": 60, "approvals": 2,
              "steps": [{"host": HOSTILE, "action": HOSTILE, "params": {HOSTILE: HOSTILE},
                         "nonce": HOSTILE}]}
    panel = _render(approvals_cli._panel(p), width)
    signed = _render(approvals_cli._signed(fields), width)
    why = _render(approvals_cli._preview({"available": False, "why": HOSTILE}), width)
    for rendered in (panel, signed, why):
        assert "\x1b[8m" not in rendered and ";8m" not in rendered  # no concealed text
        assert not ESCAPE_SEQUENCE.search(SGR.sub("", rendered)), repr(rendered)
    panel, signed = SGR.sub("", panel), SGR.sub("", signed)
    if width > 300:
        assert visible(HOSTILE) in panel
    rows = panel.splitlines()[1:-1]
    label_width = len("what it does")
    for row in rows:
        label = row[2:2 + label_width].rstrip()
        assert row.startswith("│ ") and (label in PANEL_LABELS or not label), row
    assert [r[2:2 + label_width].rstrip() for r in rows if r[2] != " "] == list(PANEL_LABELS)
    header, *rows = signed.splitlines()
    assert header == approvals_cli.SIGNED_HEADER
    label_width = max(map(len, SIGNED_LABELS))
    for row in rows:
        label = row[:2 + label_width].strip()
        assert row.startswith("  ") and (label in SIGNED_LABELS or not label), row
    assert [r[2:2 + label_width].rstrip() for r in rows if r[2] != " "] == list(SIGNED_LABELS)
