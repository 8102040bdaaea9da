"""The first two gates of mcp-wrapper: raw request screening and POSIX word splitting."""

import pytest
from mcp_infra_target.core.refusal import Refusal
from mcp_infra_target.readonly import screen, tokenise


def reason(func, *args):
    with pytest.raises(Refusal) as caught:
        func(*args)
    return caught.value.reason


@pytest.mark.parametrize("text", ["", " ", "   "])
def test_empty_is_refused(text):
    assert reason(screen.check, text, 4096) == "empty"


def test_length_is_measured_in_bytes():
    assert screen.check("a" * 4096, 4096)
    assert reason(screen.check, "a" * 4097, 4096) == "too_long"
    assert reason(screen.check, "é" * 2049, 4096) == "too_long"  # 4098 bytes


@pytest.mark.parametrize("char", ["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\x0b"])
def test_control_characters_are_refused(char):
    assert reason(screen.check, "ls" + char + "/etc", 4096) == "control_char"


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\u200d", "\ufeff", "\u2066", "\u00ad"])
def test_format_characters_are_refused(char):
    assert reason(screen.check, "ls " + char + "/etc", 4096) == "unicode_format_char"


@pytest.mark.parametrize("char", ["\u00a0", "\u2028", "\u2029", "\u3000", "\ue000"])
def test_other_separators_and_private_use_are_refused(char):
    assert reason(screen.check, "ls" + char + "/etc", 4096) == "non_printable_char"


def test_printable_unicode_passes_the_screen():
    # Passing the screen is not being allowed: `ｌs` is simply an unknown command later.
    assert screen.check("ｌs /var/log", 4096) == "ｌs /var/log"


def test_invalid_utf8_is_refused():
    assert reason(screen.decode, b"ls \xff") == "invalid_utf8"
    assert screen.decode("ls é".encode()) == "ls é"


@pytest.mark.parametrize("text, words", [
    ("ls -la /var/log", ["ls", "-la", "/var/log"]),
    ("grep 'a b' /x", ["grep", "a b", "/x"]),
    ('grep "a\\"b" /x', ["grep", 'a"b', "/x"]),
    ("echo a\\ b", ["echo", "a b"]),
    ("ls # not a comment", ["ls", "#", "not", "a", "comment"]),
    ("cat /x;id", ["cat", "/x;id"]),
    ("cat $(id) `id` ${IFS}", ["cat", "$(id)", "`id`", "${IFS}"]),
    ("a|b&&c", ["a|b&&c"]),
    ("ls ''", ["ls", ""]),
    ("  uptime  ", ["uptime"]),
])
def test_posix_splitting_without_shell_meaning(text, words):
    assert tokenise.split(text, 128) == words


@pytest.mark.parametrize("text", ["ls 'x", 'ls "x', "ls \\"])
def test_unbalanced_quotes_are_refused(text):
    assert reason(tokenise.split, text, 128) == "tokenise_error"


def test_word_count_is_capped():
    assert reason(tokenise.split, "a " * 129, 128) == "too_many_tokens"
    assert reason(tokenise.split, " ", 128) == "empty"
