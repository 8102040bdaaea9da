"""`mcp-linux-infra operators ...`: what an administrator types and what they deploy."""

import json
import subprocess

import pytest
import yaml
from sshsig_support import KEYGEN, Authenticator

from mcp_linux_infra.cli import main


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("LINUX_MCP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LINUX_MCP_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("LINUX_MCP_CONSOLE_ORIGIN", "https://approve.example.com")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def deployed(out: str) -> list[dict]:
    return yaml.safe_load(out)["mcp_infra_operators"]


def test_add_from_a_file_and_from_a_line_prints_the_list_to_deploy(state, capsys):
    subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(state / "k")],
                   check=True)
    assert main(["operators", "add", "alice", "--public-key", str(state / "k.pub")]) == 0
    first = deployed(capsys.readouterr().out)
    assert first == [{"principal": "alice",
                      "public_key": " ".join((state / "k.pub").read_text().split()[:2])}]
    line = Authenticator("approve.example.com").public_line()
    assert main(["operators", "add", "bob", "--public-key", line]) == 0
    assert [o["principal"] for o in deployed(capsys.readouterr().out)] == ["alice", "bob"]
    assert main(["operators", "list"]) == 0
    captured = capsys.readouterr()
    assert "sk-ecdsa" in captured.out and len(deployed(captured.out.split("┘\n")[-1])) == 2


def test_refusals_are_one_line_with_exit_code_2(state, capsys):
    line = Authenticator().public_line()
    assert main(["operators", "add", "alice", "--public-key", line]) == 0
    capsys.readouterr()
    assert main(["operators", "add", "bob", "--public-key", line]) == 2
    err = capsys.readouterr().err
    assert "key_taken" in err and "Traceback" not in err
    assert main(["operators", "add", "bob", "--public-key", str(state / "missing.pub")]) == 2
    assert main(["operators", "revoke", "nobody"]) == 2
    assert "unknown_operator" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["operators", "enroll", "-bad"])
    assert info.value.code == 2


def test_enroll_prints_a_one_time_link_on_the_console_origin(state, capsys):
    assert main(["operators", "enroll", "carol", "--ttl", "600"]) == 0
    captured = capsys.readouterr()
    link = captured.out.strip()
    assert link.startswith("https://approve.example.com/enroll/") and len(link) > 60
    assert "grants nothing" in captured.err


def test_revoke_removes_the_operator_from_the_list_to_deploy(state, capsys):
    assert main(["operators", "add", "alice", "--public-key",
                 Authenticator().public_line()]) == 0
    capsys.readouterr()
    assert main(["operators", "revoke", "alice"]) == 0
    assert deployed(capsys.readouterr().out) == []
    assert main(["operators", "revoke", "alice"]) == 2
    assert "operator_revoked" in capsys.readouterr().err


def test_list_as_json(state, capsys):
    from datetime import datetime

    assert main(["operators", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"operators": []}
    line = Authenticator("approve.example.com").public_line()
    assert main(["operators", "add", "bob", "--public-key", line]) == 0
    assert main(["operators", "add", "carol", "--public-key",
                 Authenticator("approve.example.com").public_line()]) == 0
    assert main(["operators", "revoke", "carol"]) == 0
    capsys.readouterr()
    assert main(["operators", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["operators"]  # stdout is the JSON alone
    assert (listed[0]["name"], listed[0]["public_key"]) == ("bob", line)
    assert listed[0]["revoked_at"] is None and datetime.fromisoformat(listed[1]["revoked_at"])
    assert main(["operators", "list", "--active", "--json"]) == 0
    assert [o["name"] for o in json.loads(capsys.readouterr().out)["operators"]] == ["bob"]
