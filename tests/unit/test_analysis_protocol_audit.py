"""The pure parts of the MCP tier: risk analysis, reading wrapper answers, audit redaction."""

import io
import json

import pytest

from mcp_linux_infra.audit import Audit, redact
from mcp_linux_infra.readonly.protocol import outcome
from mcp_linux_infra.server.risk import analyze
from mcp_linux_infra.ssh.channel import Completed


@pytest.mark.parametrize("command,risk,recommendation,effects", [
    ("cat /etc/hosts", "LOW", "ADD_AUTO", ["read"]),
    ("systemctl status nginx", "LOW", "ADD_AUTO", ["read"]),
    ("tail -f /var/log/syslog", "MEDIUM", "ADD_MANUAL", ["follow"]),
    ("tail -Fn50 /var/log/syslog", "MEDIUM", "ADD_MANUAL", ["follow"]),
    ("less /etc/hosts", "MEDIUM", "ADD_MANUAL", ["page"]),
    ("curl http://169.254.169.254/", "MEDIUM", "ADD_MANUAL", ["network"]),
    ("systemctl restart nginx", "HIGH", "BLOCK", ["write"]),
    ("journalctl --vacuum-size=1M", "HIGH", "BLOCK", ["write"]),
    ("tar -xzf a.tgz", "HIGH", "BLOCK", ["write"]),
    ("pkill -9 nginx", "HIGH", "BLOCK", ["signal"]),
    ("find / -name x -delete", "HIGH", "BLOCK", ["write"]),
    ("find / -exec cat {} +", "CRITICAL", "BLOCK", ["execute"]),
    ("/usr/bin/env FOO=1 ls", "CRITICAL", "BLOCK", ["execute"]),
    ("sudo -n cat /etc/shadow", "CRITICAL", "BLOCK", ["execute", "privilege"]),
    ("python3.11 -c 'print(1)'", "CRITICAL", "BLOCK", ["execute"]),
    ("docker exec web sh", "CRITICAL", "BLOCK", ["execute"]),
    ("docker ps", "LOW", "ADD_AUTO", ["read"]),
    ("somethingnew --flag", "MEDIUM", "ADD_MANUAL", []),
    ("ls -la | grep x", "MEDIUM", "ADD_MANUAL", ["read"]),
    ("cat a > /etc/passwd", "HIGH", "BLOCK", ["write"]),
])
def test_risk_table(command, risk, recommendation, effects):
    result = analyze(command)
    assert (result["risk"], result["recommendation"]) == (risk, recommendation), result
    assert sorted(result["effects"]) == sorted(effects)
    assert result["reasons"]


def test_analysis_explains_the_option_and_shell_syntax():
    result = analyze("find / -exec rm {} ;")
    assert result["reasons"][0] == "`-exec` lets find run other programs or code"
    assert "targets run no shell" in result["reasons"][-1]
    assert analyze('cat "unbalanced')["reasons"] == [
        "cannot be split into words: No closing quotation"]


def done(code, out=b"", err=b"", truncated=False):
    return Completed(code, out, err, truncated, 0.01)


def test_wrapper_answers_are_read_per_protocol():
    refusal = {"mcp_refusal": {"reason": "unknown_command", "rule": "policy/commands",
                               "detail": "'nc' is not in the policy", "command": None}}
    refused = outcome("nc -z x 1", done(126, err=(json.dumps(refusal) + "\n").encode()))
    assert refused.status == "refused" and refused.refusal.reason == "unknown_command"
    # exit 126 from the command itself (not a refusal line) is just an exit code
    assert outcome("x", done(126, err=b"permission denied\n")).status == "ok"
    timed = outcome("sleep", done(124, err=b"[mcp-wrapper: timed out after 10 s]\n"))
    assert timed.status == "timeout"
    assert outcome("grep", done(124)).status == "ok"
    cut = outcome("cat", done(0, b"abc\n[mcp-wrapper: output truncated at 4 bytes]\n"))
    assert (cut.truncated, cut.stdout) == (True, "abc\n")
    mid = outcome("cat", done(0, b"abcd\n[mcp-wrapper: output truncated at 4 bytes]\n"))
    assert mid.stdout == "abcd\n"
    client_cut = outcome("cat", done(None, b"x" * 10, truncated=True))
    assert client_cut.truncated and client_cut.exit_code is None


def test_redaction_by_key_and_by_shape():
    event = redact({"token": "abc", "args": {"command": "mysql -psecret --password hunter2",
                                             "header": "Authorization: Bearer eyJhbGciOi.x.y",
                                             "key": "-----BEGIN OPENSSH PRIVATE KEY-----\n"
                                                    "b3BlbnNzaC1rZXk\n-----END OPENSSH "
                                                    "PRIVATE KEY-----"}})
    text = json.dumps(event)
    for secret in ("abc", "hunter2", "eyJhbGciOi", "b3BlbnNzaC1rZXk"):
        assert secret not in text


def test_audit_writes_json_lines_to_file_and_stream(tmp_path):
    stream = io.StringIO()
    audit = Audit(tmp_path / "state" / "audit.jsonl", stream)
    audit.info("tool_call", trace="t1", arguments={"password": "x"})
    audit.close()
    line = (tmp_path / "state" / "audit.jsonl").read_text()
    assert line == stream.getvalue()
    record = json.loads(line)
    assert record["trace"] == "t1" and record["arguments"]["password"] == "[REDACTED]"
    assert (tmp_path / "state" / "audit.jsonl").stat().st_mode & 0o777 == 0o600


def test_a_drafted_spec_compiles_in_the_targets_own_policy_loader():
    from wrapper_support import default_policy_document, load_document

    from mcp_linux_infra.server.learning import RefusedCommand, draft_spec

    seen = [RefusedCommand("tree -L 2 /etc", "tree", 3, ["a"], ["unknown_command"], 0, 0, ""),
            RefusedCommand("tree --charset=ascii -d /var/log", "tree", 2, ["b"],
                           ["unknown_command"], 0, 0, "")]
    spec = draft_spec("tree", seen)
    assert spec["options"] == {"-L": None, "--charset": {"type": "short_text"}, "-d": None}
    document = default_policy_document()
    document["plugins"]["site"] = {"description": "site additions", "commands": {"tree": spec}}
    assert "tree" in load_document(document).commands
