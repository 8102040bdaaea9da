"""Reading a host's answers (readonly/protocol.py): a refusal line, a timeout, output the
target or the client cut; the refusal line is the same in both tiers' protocols."""

import json

import pytest

from mcp_linux_infra.readonly.protocol import outcome, refusal_line
from mcp_linux_infra.ssh.channel import Completed


def done(code, out=b"", err=b"", truncated=False):
    return Completed(code, out, err, truncated, 0.01)


REFUSAL = {"mcp_refusal": {"reason": "unknown_command", "rule": "policy/commands",
                           "detail": "'nc' is not in the policy", "command": None}}
REFUSAL_LINE = (json.dumps(REFUSAL) + "\n").encode()

# request, answer, (status, exit code, truncated, stdout)
ANSWERS = [
    pytest.param("nc -z x 1", done(126, err=REFUSAL_LINE), ("refused", 126, False, ""),
                 id="refusal-line"),
    pytest.param("x", done(126, err=b"permission denied\n"), ("ok", 126, False, ""),
                 id="exit-126-of-the-command-itself-is-just-an-exit-code"),
    pytest.param("sleep", done(124, err=b"[mcp-wrapper: timed out after 10 s]\n"),
                 ("timeout", 124, False, ""), id="timed-out"),
    pytest.param("grep", done(124), ("ok", 124, False, ""), id="exit-124-without-the-marker"),
    pytest.param("cat", done(0, b"abc\n[mcp-wrapper: output truncated at 4 bytes]\n"),
                 ("ok", 0, True, "abc\n"), id="cut-by-the-target"),
    pytest.param("cat", done(0, b"abcd\n[mcp-wrapper: output truncated at 4 bytes]\n"),
                 ("ok", 0, True, "abcd\n"), id="cut-by-the-target-mid-line"),
    pytest.param("cat", done(None, b"x" * 10, truncated=True), ("ok", None, True, "x" * 10),
                 id="cut-by-the-client"),
]


@pytest.mark.parametrize(("command", "answer", "expected"), ANSWERS)
def test_wrapper_answers_are_read_per_protocol(command, answer, expected):
    out = outcome(command, answer)
    assert (out.status, out.exit_code, out.truncated, out.stdout) == expected
    assert (out.refusal.reason if out.refusal else None) == (
        "unknown_command" if expected[0] == "refused" else None)


@pytest.mark.parametrize("stderr", [
    pytest.param(REFUSAL_LINE, id="bytes"),
    pytest.param(REFUSAL_LINE.decode(), id="text"),
    pytest.param(b"a warning first\n" + REFUSAL_LINE, id="the-last-line"),
])
def test_one_refusal_line_for_both_tiers(stderr):
    refusal = refusal_line(stderr)
    assert (refusal.reason, refusal.rule, refusal.detail, refusal.command) == (
        "unknown_command", "policy/commands", "'nc' is not in the policy", None)


@pytest.mark.parametrize("stderr", [
    pytest.param(b"", id="empty"),
    pytest.param(REFUSAL_LINE + b"more after it\n", id="not-the-last-line"),
    pytest.param(b"{not json\n", id="not-json"),
    pytest.param(b'["mcp_refusal"]\n', id="not-an-object"),
    pytest.param(b'{"mcp_refusal": "no"}\n', id="not-a-refusal-object"),
])
def test_anything_else_is_no_refusal(stderr):
    assert refusal_line(stderr) is None
