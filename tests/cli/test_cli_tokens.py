"""`tokens new|list|revoke`: the tokens file holds hashes, names, scopes, groups and when each
was made, mode 0600, replaced atomically; the token itself is printed once, on stdout."""

import hashlib
import json
import stat

import pytest

from mcp_linux_infra.cli import main
from mcp_linux_infra.tokens import LAST_USED, read_tokens, write_json


@pytest.fixture
def home(tmp_path, monkeypatch):
    (tmp_path / "hosts.ini").write_text("[web]\nweb-01\n[db]\ndb-01\n")
    monkeypatch.setenv("LINUX_MCP_INVENTORY", str(tmp_path / "hosts.ini"))
    monkeypatch.setenv("LINUX_MCP_TOKENS_FILE", str(tmp_path / "conf" / "tokens.json"))
    monkeypatch.setenv("LINUX_MCP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_new_prints_the_token_once_and_stores_its_hash(home, capsys):
    assert main(["tokens", "new", "desktop", "--scopes", "read,propose"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert len(out.splitlines()) == 1 and len(token) >= 40
    assert "desktop" in err and token not in err
    path = home / "conf" / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in path.read_text()
    (spec,) = json.loads(path.read_text())
    assert spec["sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert spec["name"] == "desktop" and spec["scopes"] == ["read", "propose"]
    assert spec["groups"] is None and spec["created"].endswith("+00:00")
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_names_are_unique_scopes_closed_groups_known(home, capsys):
    assert main(["tokens", "new", "team", "--groups", "web"]) == 0
    assert main(["tokens", "new", "team"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["tokens", "new", "other", "--groups", "wbe"]) == 2
    assert "did you mean web?" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["tokens", "new", "other", "--scopes", "read,admin"])
    assert exited.value.code == 2
    assert [s.name for s in read_tokens(home / "conf" / "tokens.json")] == ["team"]


def test_list_and_revoke(home, capsys):
    main(["tokens", "new", "a", "--scopes", "read,execute"])
    main(["tokens", "new", "b", "--scopes", "metrics", "--groups", "db,web"])
    capsys.readouterr()
    specs = read_tokens(home / "conf" / "tokens.json")
    write_json(home / "state" / LAST_USED, {specs[0].sha256: "2026-01-02T03:04:05+00:00"})
    assert main(["tokens", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["tokens"]
    assert [(r["name"], r["scopes"], r["groups"], r["last_used"]) for r in rows] == [
        ("a", ["read", "execute"], None, "2026-01-02T03:04:05+00:00"),
        ("b", ["metrics"], ["db", "web"], None)]
    assert "sha256" not in rows[0]
    assert main(["tokens", "list"]) == 0
    table = capsys.readouterr().out
    assert "2026-01-02T03:04:05+00:00" in table and "never" in table
    assert main(["tokens", "revoke", "a"]) == 0
    assert main(["tokens", "revoke", "a"]) == 2
    assert [s.name for s in read_tokens(home / "conf" / "tokens.json")] == ["b"]
    assert main(["tokens", "revoke", "b"]) == 0
    assert read_tokens(home / "conf" / "tokens.json") == []  # exists: still admits no one


def test_a_bad_tokens_file_is_one_line(home, capsys):
    path = home / "conf" / "tokens.json"
    path.parent.mkdir()
    path.write_text('[{"name": "x"}]')
    assert main(["tokens", "list"]) == 3
    err = capsys.readouterr().err
    assert str(path) in err and len(err.strip().splitlines()) == 1


def test_the_old_json_setting_names_its_replacement(home, capsys, monkeypatch):
    monkeypatch.setenv("LINUX_MCP_HTTP_TOKENS", "[]")
    assert main(["tokens", "list"]) == 3
    err = capsys.readouterr().err
    assert "LINUX_MCP_HTTP_TOKENS" in err and "tokens new" in err
