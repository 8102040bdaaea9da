"""Test roots for the action tier: real ssh-keygen keys and signatures, real pra-run processes.

A test root mirrors the target's paths (etc/mcp-infra, var/lib/mcp-infra, var/log/mcp-infra,
run, usr/local/lib/mcp-infra -> the repo's library) and is selected with MCP_INFRA_TEST_ROOT,
which the entry scripts honour only outside sshd and sudo.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SYSTEM = REPO / "system"
PRA_RUN = SYSTEM / "bin" / "pra-run"
PRA_EXEC = SYSTEM / "bin" / "pra-exec"
NAMESPACE = "mcp-linux-infra-approval"
HOST = "target-1"
KEYGEN = "/usr/bin/ssh-keygen"


FAKE_SUDO = """#!/usr/bin/python3 -IS
import json, os, sys
data = sys.stdin.buffer.read()
with open(%(record)r, "w") as handle:
    json.dump({"argv": sys.argv, "env": dict(os.environ), "stdin": data.decode()}, handle)
with open(%(record)r + ".stdin", "wb") as handle:
    handle.write(data)
os.dup2(os.open(%(record)r + ".stdin", os.O_RDONLY), 0)
os.execve(%(pra_run)r, [%(pra_run)r], {"MCP_INFRA_TEST_ROOT": %(root)r})
"""


def canonical(obj: Any) -> str:
    """The canonical text of a document (what the operator CLI signs)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Keys:
    """ed25519 keys made once per session: operators alice and bob, an expired signer carol,
    an unknown key and the pra-exec client key."""

    NAMES = ("alice", "bob", "carol", "unknown", "pra")

    def __init__(self, directory: Path):
        self.dir = directory
        for name in self.NAMES:
            subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", name,
                            "-f", str(directory / name)], check=True)

    def public(self, name: str) -> str:
        return " ".join((self.dir / (name + ".pub")).read_text().split()[:2])

    def allowed_signers(self) -> str:
        """alice and bob are operators; carol's line expired in 2020; unknown and pra absent."""
        return ("alice %s\nbob %s\ncarol valid-before=\"20200101\" %s\n"
                % (self.public("alice"), self.public("bob"), self.public("carol")))

    def sign(self, data: bytes, name: str = "alice", namespace: str = NAMESPACE) -> str:
        proc = subprocess.run([KEYGEN, "-Y", "sign", "-f", str(self.dir / name), "-n", namespace,
                               "-"], input=data, capture_output=True, check=True)
        return proc.stdout.decode("ascii")


class TestRoot:
    """A private target filesystem for one test."""

    __test__ = False

    def __init__(self, keys: Keys):
        self.keys = keys
        self.path = Path(tempfile.mkdtemp(prefix="pra-root-"))
        self.work = self.path / "work"
        for sub in ("etc/mcp-infra", "var/log/mcp-infra", "run", "usr/local/lib", "usr/bin",
                    "work"):
            (self.path / sub).mkdir(parents=True)
        (self.path / "var/lib/mcp-infra").mkdir(parents=True, mode=0o700)
        (self.path / "usr/local/lib/mcp-infra").symlink_to(SYSTEM / "lib")
        (self.path / "etc/mcp-infra/host-id").write_text(HOST + "\n")
        (self.path / "etc/mcp-infra/allowed_signers").write_text(keys.allowed_signers())
        self.write_catalog()

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def file(self, name: str) -> str:
        return str(self.work / name)

    def catalog(self, extra: dict[str, Any] | None = None,
                settings: dict[str, int] | None = None) -> dict[str, Any]:
        """Harmless actions on files under work/; `extra` adds or replaces actions."""
        files = [self.file(n) for n in ("a", "b", "c")]
        exists = ["/usr/bin/test", "-e", "{file}"]
        actions = {
            "touch_file": {
                "description": "Desired state: the file exists.",
                "params": {"file": {"type": "path", "values": files}},
                "check": exists, "run": ["/usr/bin/touch", "--", "{file}"], "verify": exists},
            "touch_windowed": {
                "description": "Touch the file; satisfied for 300 s after a change.",
                "params": {"file": {"type": "path", "values": files}},
                "check": None, "run": ["/usr/bin/touch", "--", "{file}"], "verify": exists,
                "idempotency_window_seconds": 300},
            "always_fails": {
                "description": "check, run and verify all fail.",
                "params": {"file": {"type": "path", "values": files}},
                "check": ["/usr/bin/false"], "run": ["/usr/bin/false"],
                "verify": ["/usr/bin/test", "-e", "{file}"]},
            "two_params": {
                "description": "Two typed params.",
                "params": {"file": {"type": "path", "values": files},
                           "mode": {"type": "word", "values": ["0600", "0644"]}},
                "check": ["/usr/bin/false"], "run": ["/usr/bin/chmod", "{mode}", "{file}"],
                "verify": ["/usr/bin/test", "-e", "{file}"]},
        }
        actions.update(extra or {})
        return {"version": 1, "settings": settings or {}, "actions": actions}

    def write_catalog(self, extra: dict[str, Any] | None = None,
                      settings: dict[str, int] | None = None) -> None:
        data = self.catalog(extra, settings)
        (self.path / "etc/mcp-infra/actions.json").write_text(json.dumps(data, indent=1))

    def document(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        doc = {"v": 1, "proposal": "prop-1", "host": HOST, "action": "touch_file",
               "params": {"file": self.file("a")}, "nonce": os.urandom(16).hex(),
               "not_before": now - 10, "not_after": now + 600, "approver": "alice"}
        doc.update(overrides)
        return doc

    def envelope(self, doc: dict[str, Any] | None = None, signer: str = "alice",
                 namespace: str = NAMESPACE, text: str | None = None,
                 **fields: Any) -> bytes:
        """An envelope for `doc` (or raw document `text`), signed by `signer` over its bytes."""
        text = canonical(doc if doc is not None else self.document()) if text is None else text
        envelope = {"document": text,
                    "signature": self.keys.sign(text.encode("utf-8"), signer, namespace)}
        envelope.update(fields)
        return json.dumps(envelope).encode()

    def env(self, **extra: str) -> dict[str, str]:
        return dict({"PATH": "/usr/bin:/bin", "MCP_INFRA_TEST_ROOT": str(self.path)}, **extra)

    def pra_run(self, data: bytes, args: list[str] = (), **env: str):
        """Run the real pra-run script against this root."""
        return subprocess.run([str(PRA_RUN), *args], input=data, capture_output=True, check=False,
                              env=self.env(**env), timeout=60)

    def pra_exec(self, command: str | None, data: bytes = b"", **env: str):
        """Run the real pra-exec script as sshd would, SSH_ORIGINAL_COMMAND = `command`."""
        if command is not None:
            env["SSH_ORIGINAL_COMMAND"] = command
        return subprocess.run([str(PRA_EXEC)], input=data, capture_output=True, check=False,
                              env=self.env(**env), timeout=60)

    def install_fake_sudo(self) -> Path:
        """usr/bin/sudo that records argv, environment and stdin, then runs pra-run."""
        record = self.work / "sudo.json"
        script = self.path / "usr/bin/sudo"
        script.write_text(FAKE_SUDO % {"record": str(record), "root": str(self.path),
                                       "pra_run": str(PRA_RUN)})
        script.chmod(0o755)
        return record

    def log(self) -> list[dict[str, Any]]:
        path = self.path / "var/log/mcp-infra/pra-run.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def syslog(self) -> list[dict[str, Any]]:
        path = self.path / "var/log/mcp-wrapper-audit.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def ledger_file(self, nonce: str) -> Path:
        return self.path / "var/lib/mcp-infra/nonces" / hashlib.sha256(nonce.encode()).hexdigest()


def refusal(proc) -> dict[str, Any]:
    """The refusal of a finished process (exit 126, one JSON line on stderr)."""
    assert proc.returncode == 126, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])["mcp_refusal"]


def result(proc) -> dict[str, Any]:
    """The JSON result of an accepted pra-run."""
    assert proc.returncode in (0, 1), (proc.returncode, proc.stdout, proc.stderr)
    return json.loads(proc.stdout)

