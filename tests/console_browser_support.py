"""The real approval console in a real browser: what the browser tests and the docs'
screenshots share.

`run_console` starts `mcp-linux-infra console` (the real command, its own state directory,
a free port, CONSOLE_ORIGIN http://localhost:PORT: a secure context without TLS) and gives a
`Console`: its origin, the settings a test opens the same database with, and the CLI
(`operators enroll`). `enroll`, `login` and `approve` are what an operator does in the
browser, on the page ids of /work/wt/CONSOLE-CONTRACT.md, each operator in a tab of their
own (own cookies) with a virtual authenticator of their own.
"""
from __future__ import annotations

import base64
import io
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser_support import Tab, VirtualAuthenticator
from net_support import free_port, wait_listening
from paths_support import CLI

from mcp_linux_infra.approvals.store import open_approvals
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.settings import Settings

DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
ACTION_INFO = {"description": "Desired state: the unit is active (systemctl restart).",
               "runs_as": "root"}


@dataclass
class Console:
    origin: str
    settings: Settings
    env: dict[str, str]
    cwd: Path

    def cli(self, *args: str) -> str:
        """stdout of `mcp-linux-infra ARGS` with this console's settings (exit 0 required)."""
        proc = subprocess.run([CLI, *args], env=self.env, cwd=self.cwd, capture_output=True,
                              text=True, timeout=120, check=False)
        assert proc.returncode == 0, (args, proc.returncode, proc.stderr)
        return proc.stdout

    def enroll_link(self, name: str) -> str:
        links = re.findall(rf"^{re.escape(self.origin)}/enroll/\S+$",
                           self.cli("operators", "enroll", name), re.MULTILINE)
        assert len(links) == 1, links
        return links[0]

    def audit(self) -> Audit:
        return Audit(self.settings.audit_log, io.StringIO())

    def propose(self, rationale: str = "nginx answers 502 since 03:12: restart it",
                approvals: int = 1, params: dict | None = None,
                preview: dict | None = None) -> str:
        """A pending proposal in the console's database, as the MCP server stores one."""
        store = open_approvals(self.settings, self.audit())
        try:
            return store.create("web-1", "restart_service",
                                params or {"unit": "nginx.service"}, rationale, 900,
                                preview=preview, action_info=ACTION_INFO,
                                proposed_by="model:local", required=approvals).id
        finally:
            store.close()

    def proposal(self, proposal_id: str):
        """The proposal as the database has it now."""
        store = open_approvals(self.settings, self.audit())
        try:
            return store.get(proposal_id)
        finally:
            store.close()

    def signatures(self, proposal_id: str) -> list[str]:
        """The signatures the console stored for the proposal, oldest first."""
        store = open_approvals(self.settings, self.audit())
        try:
            return store.signatures(proposal_id)
        finally:
            store.close()


@contextmanager
def run_console(tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[Console]:
    """`mcp-linux-infra console` on a free loopback port, stopped on the way out. `env`: the
    settings to share (an MCP server's, its state directory); by default a state directory
    of its own under tmp_path."""
    port = free_port("localhost")
    origin = f"http://localhost:{port}"
    if env is None:
        state = tmp_path / "state"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LINUX_MCP_")}
        env.update({"LINUX_MCP_STATE_DIR": str(state),
                    "LINUX_MCP_AUDIT_LOG": str(state / "audit.jsonl")})
    env = dict(env, LINUX_MCP_CONSOLE_ORIGIN=origin)
    state = Path(env["LINUX_MCP_STATE_DIR"])
    state.mkdir(parents=True, exist_ok=True)
    settings = Settings(_env_file=None, state_dir=state,
                        audit_log=Path(env["LINUX_MCP_AUDIT_LOG"]), console_origin=origin)
    log = tmp_path / "console.log"  # its stderr (a pipe nobody reads could fill and block it)
    with log.open("ab") as stderr:
        proc = subprocess.Popen([CLI, "console", "--bind", "127.0.0.1", "--port", str(port)],
                                env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        try:
            wait_listening(proc, "127.0.0.1", port)
        except (AssertionError, pytest.fail.Exception):
            pytest.fail(f"the console did not start: {log.read_text()[-3000:]}")
        yield Console(origin, settings, env, tmp_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Operator:
    """An operator at their browser: a tab of their own and their authenticator."""

    name: str
    tab: Tab
    authenticator: VirtualAuthenticator
    key_line: str
    ansible: str

    @property
    def application(self) -> str:
        """The key's application string (the RP ID it was made for)."""
        blob = base64.b64decode(self.key_line.split()[1])
        fields, at = [], 0
        while at < len(blob):
            size = int.from_bytes(blob[at:at + 4], "big")
            fields.append(blob[at + 4:at + 4 + size])
            at += 4 + size
        return fields[3].decode()


def enroll(tab: Tab, console: Console, name: str) -> Operator:
    """Open a fresh enrollment link, register the authenticator's passkey, read the result."""
    authenticator = tab.add_authenticator()
    tab.navigate(console.enroll_link(name))
    tab.click("#enroll")
    key_line = tab.wait_for("document.getElementById('key-line')?.textContent.trim()"
                            " || (document.getElementById('status')?.textContent.trim()"
                            " && 'status: ' + document.getElementById('status').textContent)")
    assert not key_line.startswith("status: "), key_line
    return Operator(name, tab, authenticator, key_line, tab.text("#ansible"))


def login(operator: Operator, console: Console) -> None:
    """Sign in with the passkey; returns once the page after the login has loaded."""
    tab = operator.tab
    tab.navigate(f"{console.origin}/login")
    loaded = tab.expect_load()
    tab.click("#login")
    loaded.wait()


def approve(operator: Operator, console: Console, proposal_id: str) -> str:
    """Open the proposal, press approve, return what the page then says (#status)."""
    operator.tab.navigate(f"{console.origin}/p/{proposal_id}")
    return again(operator)


def again(operator: Operator) -> str:
    """Press approve on the page as it is; what the page then says (#status)."""
    tab = operator.tab
    tab.evaluate("document.getElementById('status').textContent = ''")
    tab.click("#approve")
    return tab.wait_for("document.getElementById('status').textContent.trim()")


def screenshot_dir(tmp_path: Path) -> Path:
    """docs/images when MCP_DOCS_SCREENSHOTS=1 (to refresh the docs' pictures), else tmp."""
    return DOCS_IMAGES if os.environ.get("MCP_DOCS_SCREENSHOTS") == "1" else tmp_path
