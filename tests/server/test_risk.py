"""Risk of a command if it were allowed (server/risk.py, from data/command_risk.json)."""

import pytest

from mcp_linux_infra.server.risk import analyze


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
