"""`hosts list`, `hosts trust` and `tokens new` against real SSH servers in-process; the
progress of `hosts trust GROUP` on a terminal (a pseudo-terminal), and none without one."""

import hashlib
import json
import os
import pty
import subprocess

import pytest
from paths_support import CLI
from ssh_support import FakeSSHD, known_hosts_line, new_key

from mcp_linux_infra.cli import main
from mcp_linux_infra.ssh.hostkeys import fingerprint


@pytest.fixture
def servers(tmp_path, monkeypatch):
    started = [FakeSSHD(lambda c, s: (0, b"", b""), []) for _ in range(2)]
    lines = ["[web]"] + [f"web-0{i} ansible_host=127.0.0.1 ansible_port={s.port}"
                         for i, s in enumerate(started, 1)]
    (tmp_path / "hosts.ini").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("LINUX_MCP_INVENTORY", str(tmp_path / "hosts.ini"))
    monkeypatch.setenv("LINUX_MCP_KNOWN_HOSTS", str(tmp_path / "known_hosts"))
    monkeypatch.setenv("LINUX_MCP_STATE_DIR", str(tmp_path / "state"))  # doctor opens it
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    yield started
    for s in started:
        s.stop()


def test_trust_shows_the_fingerprint_and_records_it(servers, tmp_path, capsys):
    assert main(["hosts", "trust", "web", "--yes"]) == 0
    err = capsys.readouterr().err
    for sshd in servers:
        assert fingerprint(sshd.host_key) in err
    assert (tmp_path / "known_hosts").read_text() == "".join(
        known_hosts_line(s.host(), s.host_key) for s in servers)
    assert main(["hosts", "trust", "web-01", "--yes"]) == 0
    assert "already trusted" in capsys.readouterr().err
    assert main(["hosts", "list"]) == 0
    out = capsys.readouterr().out
    assert out.count("ecdsa-sha2-nistp256 SHA256:") == 2


def test_trust_asks_and_refuses_a_changed_key(servers, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt="": "n")
    assert main(["hosts", "trust", "web-01"]) == 1
    assert "not trusted" in capsys.readouterr().err
    assert not (tmp_path / "known_hosts").exists()
    (tmp_path / "known_hosts").write_text(known_hosts_line(servers[0].host(), new_key()))
    assert main(["hosts", "trust", "web-01", "--yes"]) == 1
    assert "differs from the recorded key" in capsys.readouterr().err
    assert main(["hosts", "trust", "nope", "--yes"]) == 2


def test_tokens_new_prints_the_token_once_and_its_hash(capsys):
    assert main(["tokens", "new", "desktop", "--scopes", "read", "propose"]) == 0
    token, entry = capsys.readouterr().out.splitlines()
    spec = json.loads(entry)
    assert spec == {"name": "desktop", "sha256": hashlib.sha256(token.encode()).hexdigest(),
                    "scopes": ["read", "propose"]}


def test_hosts_list_json(servers, capsys):
    assert main(["hosts", "trust", "web-01", "--yes"]) == 0
    capsys.readouterr()
    assert main(["hosts", "list", "web", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["hosts"]
    assert [(h["name"], h["groups"], h["address"], h["port"]) for h in listed] == \
        [(f"web-0{i}", ["web"], "127.0.0.1", s.port) for i, s in enumerate(servers, 1)]
    assert listed[0]["host_keys"] == [{"type": "ecdsa-sha2-nistp256",
                                       "fingerprint": fingerprint(servers[0].host_key)}]
    assert listed[1]["host_keys"] == []


def run(argv: list[str], stderr_terminal: bool) -> tuple[str, str, int]:
    """The CLI in a process of its own, its stderr a pseudo-terminal or a pipe: (stdout,
    what reached stderr, exit code)."""
    env = dict(os.environ, TERM="xterm-256color")
    if not stderr_terminal:
        done = subprocess.run([CLI, *argv], env=env, timeout=120, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, check=False)
        return done.stdout, done.stderr, done.returncode
    main_fd, child_fd = pty.openpty()
    with subprocess.Popen([CLI, *argv], env=env, stdout=subprocess.PIPE, stderr=child_fd,
                          stdin=subprocess.DEVNULL) as proc:
        os.close(child_fd)
        seen = b""
        while True:  # until the child's end of the terminal is closed (it exited)
            try:
                chunk = os.read(main_fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        out = proc.stdout.read().decode()
    os.close(main_fd)
    return out, seen.decode(errors="replace"), proc.returncode


def test_a_group_shows_progress_on_a_terminal_only(servers):
    out, shown, code = run(["hosts", "trust", "web", "--yes"], stderr_terminal=True)
    assert (out, code) == ("", 0)
    assert "host keys" in shown and "2/2" in shown
    out, err, code = run(["hosts", "trust", "web", "--yes"], stderr_terminal=False)
    assert (out, code) == ("", 0)
    assert "host keys" not in err and "2/2" not in err and "\x1b" not in err
    assert err.count("already trusted") == 2 and len(err.splitlines()) == 2


def test_no_progress_with_json_even_on_a_terminal(servers):
    out, shown, _ = run(["doctor", "web"], stderr_terminal=True)
    assert "doctor" in shown and "2/2" in shown
    out, shown, _ = run(["doctor", "web", "--json"], stderr_terminal=True)
    assert [h["host"] for h in json.loads(out)["hosts"]] == ["web-01", "web-02"]
    assert "2/2" not in shown and "\x1b" not in shown
