"""Tier keys as people keep them: passphrase-protected files (real ssh-keygen keys, the
passphrase in a file only we may read) and a real ssh-agent (only the configured key is
used, a locked or absent agent is a named refusal), through the pool and the CLI."""

import base64
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from paths_support import CLI
from ssh_support import FakeSSHD, known_hosts_line

from mcp_linux_infra.errors import EXIT_HOST
from mcp_linux_infra.settings import Settings
from mcp_linux_infra.ssh.errors import AgentKeyMissing, AgentUnavailable, KeyPassphrase
from mcp_linux_infra.ssh.keyfile import KeyFile, KeyUnusable
from mcp_linux_infra.ssh.pool import Pool


def keygen(path: Path, passphrase: str = "") -> Path:
    path.unlink(missing_ok=True)
    Path(f"{path}.pub").unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", path.name,
                    "-f", str(path)], check=True, timeout=60)
    return path


def blob(path: Path) -> bytes:
    return base64.b64decode(Path(f"{path}.pub").read_text().split()[1])


def secret_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def failure(keyfile: KeyFile) -> KeyUnusable:
    with pytest.raises(KeyUnusable) as err:
        keyfile.load()
    return err.value


def test_a_passphrase_file_opens_a_protected_key(tmp_path, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    key = keygen(tmp_path / "reader.key", "correct horse")
    keyfile = KeyFile(key, secret_file(tmp_path / "pass", "correct horse\n"))
    loaded, _ = keyfile.load()
    assert loaded.asbytes() == blob(key)
    # rotated: a new key under a new passphrase, both files rewritten
    keygen(key, "battery staple")
    secret_file(tmp_path / "pass", "battery staple\n")
    assert keyfile.load()[0].asbytes() == blob(key) != loaded.asbytes()


@pytest.mark.parametrize(("content", "mode", "says"), [
    ("wrong\n", 0o600, "does not open"),
    ("correct horse\n", 0o640, "mode 0640"),
    ("correct horse\n", 0o604, "mode 0604"),
    ("\n", 0o600, "is empty"),
])
def test_a_bad_passphrase_file_is_refused(tmp_path, monkeypatch, content, mode, says):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    key = keygen(tmp_path / "reader.key", "correct horse")
    err = failure(KeyFile(key, secret_file(tmp_path / "pass", content, mode)))
    assert err.error is KeyPassphrase and says in str(err), str(err)


def test_a_protected_key_without_a_passphrase_says_how(tmp_path, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    key = keygen(tmp_path / "reader.key", "correct horse")
    err = failure(KeyFile(key, None, "LINUX_MCP_READER_KEY"))
    assert err.error is KeyPassphrase and "passphrase-protected" in str(err)
    assert "LINUX_MCP_READER_KEY_PASSPHRASE_FILE" in err.hint and "ssh-add" in err.hint
    assert err.for_host("web").kind == "key_passphrase"


class Agent:
    """A real ssh-agent of the test's own (its socket in a short directory: AF_UNIX paths
    are limited to 108 bytes), stopped by its PID."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="agent-", dir="/tmp"))
        self.sock = self.dir / "s"
        out = subprocess.run(["ssh-agent", "-s", "-a", str(self.sock)], capture_output=True,
                             text=True, check=True, timeout=30)
        self.pid = int(re.search(r"SSH_AGENT_PID=(\d+)", out.stdout).group(1))
        self.askpass = self.dir / "askpass"
        self.secret = self.dir / "secret"
        self.askpass.write_text(f"#!/bin/sh\ncat {self.secret}\n")
        self.askpass.chmod(0o700)

    def ssh_add(self, *args: str, passphrase: str = "") -> None:
        """ssh-add, any passphrase it asks for given through SSH_ASKPASS (no terminal)."""
        secret_file(self.secret, passphrase + "\n")
        env = dict(os.environ, SSH_AUTH_SOCK=str(self.sock), SSH_ASKPASS=str(self.askpass),
                   SSH_ASKPASS_REQUIRE="force")
        out = subprocess.run(["ssh-add", *args], env=env, stdin=subprocess.DEVNULL, check=False,
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def agent(monkeypatch):
    running = Agent()
    monkeypatch.setenv("SSH_AUTH_SOCK", str(running.sock))
    yield running
    running.stop()


def test_the_agent_key_equal_to_the_configured_public_key_signs(tmp_path, agent):
    other = keygen(tmp_path / "personal.key")
    mine = keygen(tmp_path / "reader.key", "correct horse")
    agent.ssh_add(str(other))  # an operator's own key, first in the agent's list
    agent.ssh_add(str(mine), passphrase="correct horse")
    keyfile = KeyFile(Path(f"{mine}.pub"))
    key, _ = keyfile.load()
    assert key.asbytes() == blob(mine)
    assert keyfile.label == f"{mine}.pub (ssh-agent)"
    # a protected key file without a passphrase file: the agent's copy of it
    assert KeyFile(mine).load()[0].asbytes() == blob(mine)


def test_an_agent_without_the_key_or_locked_or_absent_is_a_named_refusal(
        tmp_path, agent, monkeypatch):
    mine = keygen(tmp_path / "reader.key")
    keyfile = KeyFile(Path(f"{mine}.pub"))
    err = failure(keyfile)
    assert err.error is AgentKeyMissing and "holds no key equal to" in str(err)
    agent.ssh_add(str(mine))
    agent.ssh_add("-x", passphrase="lock")
    err = failure(keyfile)
    assert err.error is AgentKeyMissing and "locked" in str(err) and "ssh-add -X" in err.hint
    agent.ssh_add("-X", passphrase="lock")
    assert keyfile.load()[0].asbytes() == blob(mine)
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "gone"))
    assert failure(keyfile).error is AgentUnavailable
    monkeypatch.delenv("SSH_AUTH_SOCK")
    assert failure(keyfile).error is AgentUnavailable


def answer(command, stdin):
    return 0, f"ran {command}\n".encode(), b""


@pytest.fixture
def sshd():
    server = FakeSSHD(answer, [])
    yield server
    server.stop()


def test_the_pool_logs_in_with_agent_and_passphrase_keys_only(tmp_path, agent, sshd):
    other = keygen(tmp_path / "personal.key")
    reader = keygen(tmp_path / "reader.key")
    pra = keygen(tmp_path / "pra.key", "correct horse")
    agent.ssh_add(str(other))
    agent.ssh_add(str(reader))
    rotated = keygen(tmp_path / "rotated.key")
    agent.ssh_add(str(rotated))
    sshd.authorized = {base64.b64encode(blob(k)).decode() for k in (reader, pra, rotated)}
    host = sshd.host()
    (tmp_path / "known_hosts").write_text(known_hosts_line(host, sshd.host_key))
    settings = Settings(_env_file=None, known_hosts=tmp_path / "known_hosts",
                        reader_key=Path(f"{reader}.pub"), pra_key=pra,
                        pra_key_passphrase_file=secret_file(tmp_path / "pass", "correct horse"),
                        ssh_config=Path("/dev/null"), connect_timeout=5, command_timeout=10,
                        keepalive_interval=0, reader_sessions=0)
    first = blob(reader)
    pool = Pool(settings)
    try:
        assert pool.run(host, "uptime").stdout == b"ran uptime\n"
        assert pool.run(host, "list", tier="pra").stdout == b"ran list\n"
        # rotation: the configured public key now names another agent key
        shutil.copy(f"{rotated}.pub", f"{reader}.pub")
        assert pool.run(host, "uptime").stdout == b"ran uptime\n"
    finally:
        pool.close()
    offered = [base64.b64decode(k) for _, k in sshd.logins]
    assert offered == [first, blob(pra), blob(rotated)]  # never the personal key
    assert sshd.connections == 3


def test_cli_one_line_and_exit_code_when_the_agent_is_absent(tmp_path, sshd, monkeypatch):
    """`hosts trust` through a jump host records the jump host's key, then needs the read
    tier's key to go on: no agent is one line, exit 5, the reason named."""
    mine = keygen(tmp_path / "reader.key")
    jump = FakeSSHD(answer, [], forward={("127.0.0.1", sshd.port)})
    try:
        inventory = tmp_path / "inventory.ini"
        inventory.write_text(f"inner ansible_host=127.0.0.1 ansible_port={sshd.port} "
                             f"ansible_ssh_common_args='-J jump@127.0.0.1:{jump.port}'\n")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("LINUX_MCP_") and k != "SSH_AUTH_SOCK"}
        env.update(LINUX_MCP_INVENTORY=str(inventory), LINUX_MCP_STATE_DIR=str(tmp_path),
                   LINUX_MCP_READER_KEY=f"{mine}.pub", LINUX_MCP_SSH_CONFIG="/dev/null",
                   LINUX_MCP_KEYS_DIR=str(tmp_path / "keys"),
                   XDG_CONFIG_HOME=str(tmp_path / "config"))
        out = subprocess.run([CLI, "hosts", "trust", "inner", "--yes"], env=env, check=False,
                             capture_output=True, text=True, timeout=60, cwd=tmp_path)
    finally:
        jump.stop()
    assert out.returncode == EXIT_HOST, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "SSH_AUTH_SOCK is not set" in errors[0], out.stderr
    assert "Traceback" not in out.stderr
    assert f"[127.0.0.1]:{jump.port}" in (tmp_path / "known_hosts").read_text()
