"""The target tier this version replaces, so that tests can check that a server of this
version still works with targets deployed before it (the wire protocols stay compatible).

`PreviousTier(into)` takes `system/` as it was at PREVIOUS (main before issue 10) from git
and runs it as that version's tests did: a test root (MCP_INFRA_TEST_ROOT) whose library is
the previous one, its default policy or catalog, and its own mcp-wrapper or pra-exec script,
one run per request.
Nothing of it is imitated: it is the previous code. (A shallow clone without PREVIOUS
cannot run these tests, and says so.)
"""

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from paths_support import REPO

PREVIOUS = "1dbd047"  # main before issue 10 (the layout in one step)


class PreviousTier:
    def __init__(self, into: Path):
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", PREVIOUS,
                                  "system"], capture_output=True, timeout=60, check=False)
        if archive.returncode != 0:
            pytest.fail(f"git has no {PREVIOUS} here (a shallow clone?): "
                        f"{archive.stderr.decode()[-300:]}", pytrace=False)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(into, filter="data")
        self.system = into / "system"

    def policy(self) -> dict:
        return json.loads((self.system / "policy/readonly.json").read_text())

    def make_root(self, document: dict, root: Path) -> Path:
        """A test root of the previous layout: its library, `document` as its policy, and
        the audit file (the test mode's syslog)."""
        (root / "usr/local/lib").mkdir(parents=True)
        (root / "usr/local/lib/mcp-infra").symlink_to(self.system / "lib")
        (root / "etc/mcp-infra").mkdir(parents=True)
        (root / "etc/mcp-infra/readonly.json").write_text(json.dumps(document))
        (root / "var/log").mkdir(parents=True)
        (root / "var/log/mcp-wrapper-audit.jsonl").touch()
        return root

    def action_root(self, root: Path, host_id: str) -> Path:
        """A test root of the previous action tier: its default catalog, this host id."""
        (root / "usr/local/lib").mkdir(parents=True)
        (root / "usr/local/lib/mcp-infra").symlink_to(self.system / "lib")
        (root / "etc/mcp-infra").mkdir(parents=True)
        (root / "etc/mcp-infra/actions.json").write_bytes(
            (self.system / "policy/actions.json").read_bytes())
        (root / "etc/mcp-infra/host-id").write_text(host_id + "\n")
        (root / "var/log").mkdir(parents=True)
        return root

    def handler(self, root: Path, script: str = "wrappers/mcp-wrapper"):
        """An ssh_support handler: each request runs the previous mcp-wrapper (or the
        previous `script`, such as wrappers/pra-exec) in `root`."""
        def handle(command: str, stdin: bytes) -> tuple[int, bytes, bytes]:
            done = subprocess.run(
                [str(self.system / script)], input=stdin, capture_output=True, timeout=60,
                check=False, cwd="/", env={"PATH": "/usr/bin:/bin", "USER": "tester",
                                           "MCP_INFRA_TEST_ROOT": str(root),
                                           "SSH_ORIGINAL_COMMAND": command})
            return done.returncode, done.stdout, done.stderr
        return handle
