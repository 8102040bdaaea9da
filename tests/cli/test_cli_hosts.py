"""`hosts list` and `hosts trust` against real SSH servers in-process."""


import pytest
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
