"""An estate for the approval flow without a lab: the real action tier behind a real SSH
server in-process.

The operators registry of its state directory knows alice and bob with their keys.
`pra-runner` logins reach the real system/bin/pra-exec in a pra_support test root,
whose `run` hands the envelope (through a recording stand-in for sudo) to the real pra-run:
real signature checks against allowed_signers, real nonce ledger, real steps. `mcp-reader`
logins answer only what the approval code asks the read tier: pra-run's records of a nonce,
as `journalctl -t pra-run -g NONCE -o cat _UID=0` prints them (from the test root's syslog
file, which is where pra-run writes them under a test root); anything else is refused the
way mcp-wrapper refuses an unknown command.
"""

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from mcp_support import audit_into, settings_env
from pra_support import HOST, Keys, TestRoot
from ssh_support import FakeSSHD, known_hosts_line, new_key

from mcp_linux_infra.audit import Audit
from mcp_linux_infra.operators.registry import open_registry
from mcp_linux_infra.server.app import build_server
from mcp_linux_infra.server.state import AppState
from mcp_linux_infra.settings import Settings

OPERATORS = ("alice", "bob")  # registered with their session keys (pra_support.Keys)
REFUSED = (126, b"", json.dumps({"mcp_refusal": {
    "reason": "unknown_command", "rule": "policy/commands", "detail": "not in this fake",
    "command": None}}).encode() + b"\n")


def _journal(root: TestRoot, command: str) -> tuple[int, bytes, bytes]:
    words = shlex.split(command)
    if words and words[0].startswith("mcp:trace="):
        words = words[1:]
    if words[:3] != ["journalctl", "-t", "pra-run"] or "-g" not in words:
        return REFUSED
    nonce = words[words.index("-g") + 1]
    lines = [json.dumps(r, sort_keys=True) for r in root.syslog()
             if r.get("event") == "pra-run" and nonce in json.dumps(r)]
    return (0 if lines else 1), "".join(line + "\n" for line in lines).encode(), b""


@dataclass
class ActionEstate:
    """One host, `target-1`, whose action tier is the real one in `root`."""

    root: TestRoot
    sshd: FakeSSHD
    settings: Settings
    audit_lines: list[str] = field(default_factory=list)

    def audit(self) -> Audit:
        return audit_into(self.settings.audit_log, self.audit_lines)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment that gives a CLI process these settings."""
        return settings_env(self.settings, **extra)

    def server(self):
        """The MCP server on these settings, in-process."""
        return build_server(lambda: AppState.open(self.settings, audit=self.audit()))

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.audit_lines]

    def close(self) -> None:
        self.sshd.stop()


def make_action_estate(tmp_path: Path, keys: Keys, root: TestRoot, pra_exec=None,
                       **settings) -> ActionEstate:
    """`pra_exec`, an ssh_support handler, stands for the real pra-exec in `root` (the
    previous version's, previous_support)."""
    root.install_fake_sudo()
    reader = new_key(tmp_path / "reader.key")
    pra = new_key(tmp_path / "pra.key")

    def in_root(command: str, stdin: bytes) -> tuple[int, bytes, bytes]:
        done = root.pra_exec(command, stdin)
        return done.returncode, done.stdout, done.stderr

    sshd = FakeSSHD(lambda c, s: REFUSED, [reader, pra], users={
        "pra-runner": pra_exec or in_root, "mcp-reader": lambda c, s: _journal(root, c)})
    host = sshd.host(HOST)
    (tmp_path / "inventory.ini").write_text(
        f"[targets]\n{HOST} ansible_host=127.0.0.1 ansible_port={sshd.port}\n")
    (tmp_path / "known_hosts").write_text(known_hosts_line(host, sshd.host_key))
    os.chmod(tmp_path / "known_hosts", 0o600)
    config = {"_env_file": None, "inventory": [tmp_path / "inventory.ini"],
              "known_hosts": tmp_path / "known_hosts", "reader_key": tmp_path / "reader.key",
              "pra_key": tmp_path / "pra.key", "operator_key": keys.dir / "alice",
              "approver": "alice", "state_dir": tmp_path / "state",
              "tokens_file": tmp_path / "tokens.json",  # absent: no tokens
              "audit_log": tmp_path / "state" / "audit.jsonl", "connect_timeout": 2,
              "command_timeout": 20, "keepalive_interval": 0}
    config.update(settings)
    estate = ActionEstate(root, sshd, Settings(**config))
    operators = open_registry(estate.settings)  # the store's database: SQLite or PostgreSQL
    for name in OPERATORS:
        operators.add(name, keys.public(name))
    operators.close()
    return estate
