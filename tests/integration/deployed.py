"""Lab targets with the target tier deployed by the real playbook, for every lab test.

Use it from any test module with

    pytest_plugins = ["integration.deployed"]

(always this name, so that the whole session shares one lab), then the fixture `deployed`.
It boots an isolated lab of three Debian 12 targets, makes client and operator keys, records a
snapshot of each target, runs ansible/playbooks/deploy-mcp-infra.yml on all three, and yields
a `Deployed` handle. `deployed.host` is the target for every test. The other two belong to
test_remove.py: `removal_host`, and `fallback_host`, whose sshd_config had its Include line
commented out before the deploy (so the role wrote its Match blocks into sshd_config itself).

Everything goes through real OpenSSH clients with strict host key checking and without
connection sharing, so each call is a fresh login through sshd and the forced command.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab_support import require_lab
from net_support import free_port
from paths_support import CLI, REPO
from pra_support import canonical

ANSIBLE = REPO / "ansible"
PLAYBOOK = str(REPO / ".venv/bin/ansible-playbook")
NAMESPACE = "mcp-linux-infra-approval"
LAB_PREFIX = "itd"
LAB_HOSTS = 3
LAB_PORTS = range(2531, 2600, LAB_HOSTS)  # the first free ones: sessions may run side by side
SITE_DENIED = "/srv/lab-app/labapp/settings.py"
# The site's additions to network.destinations (mcp_infra_network_destinations).
SITE_DESTINATIONS = ["db.lab.example", "192.0.2.0/24"]
INCLUDE = "Include /etc/ssh/sshd_config.d/\\*.conf"  # as a sed pattern
RECAP_RE = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)"
                      r"\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)", re.MULTILINE)

# What the deploy touches, and what the removal must give back (see snapshot()).
SNAPSHOT_PATHS = (
    "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/subuid", "/etc/subgid",
    "/etc/ssh", "/etc/sudoers", "/etc/sudoers.d", "/etc/mcp-infra", "/usr/local",
    "/var/lib/mcp-infra", "/var/log/mcp-infra", "/var/lib/sudo", "/etc/logrotate.d",
)
# Runs on a target as root: owner, mode and sha256 (or link target) of every path under
# argv[1:], plus the account databases and sshd's effective settings for both accounts.
_SNAPSHOT_SCRIPT = r"""
import hashlib, json, os, stat, subprocess, sys
files = {}
def add(path):
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    entry = {"mode": oct(info.st_mode), "uid": info.st_uid, "gid": info.st_gid}
    if stat.S_ISREG(info.st_mode):
        with open(path, "rb") as handle:
            entry["sha256"] = hashlib.sha256(handle.read()).hexdigest()
    elif stat.S_ISLNK(info.st_mode):
        entry["link"] = os.readlink(path)
    files[path] = entry
for top in sys.argv[1:]:
    add(top)
    if os.path.isdir(top) and not os.path.islink(top):
        for directory, dirs, names in os.walk(top):
            for name in dirs + names:
                add(os.path.join(directory, name))
def run(*argv):
    return subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()
json.dump({"files": files,
           "passwd": sorted(run("getent", "passwd")), "group": sorted(run("getent", "group")),
           "sshd": {u: run("/usr/sbin/sshd", "-T", "-C", "user=%s,host=x,addr=127.0.0.1" % u)
                    for u in ("mcp-reader", "pra-runner")}},
          sys.stdout, sort_keys=True)
"""


@dataclass
class Deployed:
    """Handle on the deployed lab: names, ports, key paths, and real-client helpers."""

    root: Path
    env: dict[str, str]
    hosts: dict[str, int]
    keys_dir: Path
    vars_file: Path
    pre_deploy: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- where things are -------------------------------------------------------------------
    @property
    def host(self) -> str:
        return min(self.hosts)

    @property
    def removal_host(self) -> str:
        return sorted(self.hosts)[1]

    @property
    def fallback_host(self) -> str:
        return sorted(self.hosts)[2]

    @property
    def port(self) -> int:
        return self.hosts[self.host]

    @property
    def lab_dir(self) -> Path:
        return self.root / "lab"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.ini"

    @property
    def known_hosts(self) -> Path:
        return self.lab_dir / "known_hosts"

    @property
    def root_key(self) -> Path:
        return self.lab_dir / "bootstrap_ed25519"

    @property
    def reader_key(self) -> Path:
        return self.keys_dir / "mcp-reader.key"

    @property
    def pra_key(self) -> Path:
        return self.keys_dir / "pra-exec.key"

    @property
    def operator_key(self) -> Path:
        """Key of operator `operator` in allowed_signers."""
        return self.keys_dir / "operator.key"

    @property
    def expired_operator_key(self) -> Path:
        """Key of operator `expired-operator`, whose allowed_signers line ended in 2020."""
        return self.keys_dir / "expired-operator.key"

    # -- ssh ---------------------------------------------------------------------------------
    def ssh_options(self, log_level: str = "ERROR") -> list[str]:
        """Options of every client call: strict host keys, no sharing, no agent, no config."""
        return ["-F", "/dev/null", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
                "-o", "ControlPath=none", "-o", "ConnectTimeout=10", "-o", f"LogLevel={log_level}"]

    def ssh_argv(self, user: str, key: Path | None = None, host: str | None = None,
                 options: Sequence[str] = (), log_level: str = "ERROR") -> list[str]:
        """`ssh ... user@127.0.0.1` for `host` (default: the main target), without a command.
        The key defaults to the account's current key (the bootstrap key for root)."""
        key = key or {"mcp-reader": self.reader_key, "pra-runner": self.pra_key}.get(
            user, self.root_key)
        return (["ssh"] + self.ssh_options(log_level) + list(options)
                + ["-i", str(key), "-p", str(self.hosts[host or self.host]), f"{user}@127.0.0.1"])

    def ssh(self, user: str, command: str | None, stdin: bytes | str | None = None,
            key: Path | None = None, host: str | None = None, options: Sequence[str] = (),
            timeout: float = 60, text: bool = True, log_level: str = "ERROR"
            ) -> subprocess.CompletedProcess:
        """One fresh login; `command` None sends no command (a shell request)."""
        argv = (self.ssh_argv(user, key, host, options, log_level)
                + ([] if command is None else [command]))
        if text and isinstance(stdin, bytes):
            stdin = stdin.decode()
        if stdin is None:
            stdin = "" if text else b""
        return subprocess.run(argv, check=False, input=stdin, capture_output=True, text=text,
                              timeout=timeout)

    def ssh_reader(self, command: str | None, stdin=None, **kw) -> subprocess.CompletedProcess:
        return self.ssh("mcp-reader", command, stdin, **kw)

    def ssh_pra(self, command: str | None, stdin=None, **kw) -> subprocess.CompletedProcess:
        return self.ssh("pra-runner", command, stdin, **kw)

    def ssh_root(self, command: str, stdin=None, **kw) -> subprocess.CompletedProcess:
        return self.ssh("root", command, stdin, **kw)

    def comment_include(self, host: str, undo: bool = False) -> None:
        """Comment out (or back in) the Include line of sshd_config on `host`."""
        sed = f"s|^#\\({INCLUDE}\\)$|\\1|" if undo else f"s|^{INCLUDE}$|#&|"
        self.root_ok(f"sed -i '{sed}' /etc/ssh/sshd_config", host)

    def key_for(self, user: str, host: str | None = None) -> Path:
        """The local private key whose public half `host` accepts for `user` now (after a
        rotation on some hosts only, that may be a retired copy)."""
        lines = self.root_ok(f"cat /etc/ssh/authorized_keys/{user}", host).splitlines()
        accepted = {" ".join(line.split()[-2:]) for line in lines
                    if line and not line.startswith("#")}
        name = {"mcp-reader": "mcp-reader", "pra-runner": "pra-exec"}[user]
        for pub in sorted(self.keys_dir.glob(f"{name}.key.pub*")):
            if " ".join(pub.read_text().split()[:2]) in accepted:
                return pub.with_name(pub.name.replace(".key.pub", ".key", 1))
        raise AssertionError(f"no local key is accepted for {user} on {host or self.host}")

    def root_ok(self, command: str, host: str | None = None) -> str:
        """Run a root command that must succeed; its stdout."""
        out = self.ssh_root(command, host=host)
        assert out.returncode == 0, (command, out.returncode, out.stderr)
        return out.stdout

    # -- approvals ---------------------------------------------------------------------------
    def sign(self, data: bytes | str, key: Path | None = None,
             namespace: str = NAMESPACE) -> str:
        """Armored `ssh-keygen -Y sign` signature over `data` (default: the operator key)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        out = subprocess.run(["ssh-keygen", "-Y", "sign", "-f", str(key or self.operator_key),
                              "-n", namespace, "-"], input=data, capture_output=True,
                             check=True, timeout=30)
        return out.stdout.decode("ascii")

    def approval(self, action: str, params: dict[str, str], host: str | None = None,
                 **overrides: Any) -> dict[str, Any]:
        """An approval document for `action` on `host`, valid for ten minutes, fresh nonce."""
        now = int(time.time())
        doc = {"v": 1, "proposal": f"test-{os.urandom(4).hex()}", "host": host or self.host,
               "action": action, "params": params, "nonce": os.urandom(16).hex(),
               "not_before": now - 30, "not_after": now + 600, "approver": "operator"}
        doc.update(overrides)
        return doc

    def envelope(self, document: dict[str, Any], key: Path | None = None,
                 namespace: str = NAMESPACE) -> bytes:
        """The stdin of `pra-exec run`: the canonical document and its signature."""
        text = canonical(document)
        return json.dumps({"document": text,
                           "signature": self.sign(text, key, namespace)}).encode()

    def run_action(self, action: str, params: dict[str, str], host: str | None = None
                   ) -> subprocess.CompletedProcess:
        """Sign an approval with the operator key and send it: ssh pra-runner -> pra-exec run."""
        doc = self.approval(action, params, host)
        return self.ssh_pra("run", self.envelope(doc), host=host, timeout=300)

    # -- ansible -----------------------------------------------------------------------------
    @staticmethod
    def recap(output: str) -> dict[str, dict[str, int]]:
        """The PLAY RECAP of an ansible-playbook run: host -> {ok, changed, ..., ignored}."""
        names = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
        return {m.group(1): dict(zip(names, map(int, m.groups()[1:])))
                for m in RECAP_RE.finditer(output)}

    @staticmethod
    def changed_tasks(output: str) -> list[str]:
        """Names of the tasks that reported a change, from ansible-playbook's output."""
        tasks, task = [], None
        for line in output.splitlines():
            if line.startswith(("TASK [", "RUNNING HANDLER [")):
                task = line.split("[", 1)[1].rsplit("]", 1)[0]
            elif line.startswith("changed: ") and task and task not in tasks:
                tasks.append(task)
        return tasks

    def playbook(self, name: str, *args: str, limit: str | None = None,
                 check: bool = True) -> subprocess.CompletedProcess:
        """Run ansible/playbooks/`name` against the lab with the test keys and variables."""
        argv = [PLAYBOOK, "-i", str(self.inventory), f"playbooks/{name}",
                "-e", f"@{self.vars_file}", *args] + (["--limit", limit] if limit else [])
        env = dict(self.env, ANSIBLE_CONFIG=str(ANSIBLE / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_FORCE_COLOR="0")
        out = subprocess.run(argv, check=False, cwd=ANSIBLE, env=env, capture_output=True,
                             text=True, timeout=900)
        if check and out.returncode != 0:
            raise AssertionError(f"{name} {args} failed ({out.returncode}):\n"
                                 f"{out.stdout[-6000:]}\n{out.stderr[-3000:]}")
        return out

    def snapshot(self, host: str | None = None,
                 paths: Sequence[str] = SNAPSHOT_PATHS) -> dict[str, Any]:
        """Owners, modes and contents under `paths`, accounts, effective sshd settings."""
        out = self.ssh_root("python3 - " + " ".join(paths), stdin=_SNAPSHOT_SCRIPT, host=host)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)


def _free_ports() -> int:
    """The first port of LAB_HOSTS consecutive free ports."""
    for base in LAB_PORTS:
        sockets = [socket.socket() for _ in range(LAB_HOSTS)]
        try:
            for offset, sock in enumerate(sockets):
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError(f"no {LAB_HOSTS} free ports in {LAB_PORTS}")


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    out = subprocess.run(argv, check=False, env=env, capture_output=True, text=True, timeout=900,
                         cwd=REPO)
    if out.returncode != 0:
        raise AssertionError(f"{argv} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def _make_keys(keys_dir: Path, env: dict[str, str]) -> None:
    _run([CLI, "keys", "init", "--dir", str(keys_dir)], env)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "expired operator",
                    "-f", str(keys_dir / "expired-operator.key")], check=True, timeout=60)


def _write_vars(path: Path, keys_dir: Path) -> None:
    """The lab's group variables (as for `lab up`'s own group), this session's keys, two
    operators (`operator`, and `expired-operator`, valid until 2020), a site's extra
    denied path (lab-app's Django settings, where a real SECRET_KEY would be) and a site's
    extra destinations."""
    def public(name: str) -> str:
        return (keys_dir / f"{name}.key.pub").read_text().strip()
    variables = yaml.safe_load((ANSIBLE / "inventory/group_vars/lab.yml").read_text())
    variables.update({
        "mcp_infra_keys_dir": str(keys_dir),
        "mcp_infra_readonly_extra_deny": [SITE_DENIED],
        "mcp_infra_network_destinations": SITE_DESTINATIONS,
        "mcp_infra_operators": [
            {"principal": "operator", "public_key": public("operator")},
            {"principal": "expired-operator", "public_key": public("expired-operator"),
             "valid_before": "20200101"},
        ],
    })
    path.write_text(json.dumps(variables, indent=1))


def lab_env(root: Path, prefix: str) -> dict[str, str]:
    """The environment of a lab of its own under root: its name prefix, and a first port
    the OS says is free."""
    return dict(os.environ, LINUX_MCP_LAB_DIR=str(root / "lab"),
                LINUX_MCP_LAB_INVENTORY=str(root / "inventory.ini"),
                LINUX_MCP_LAB_NAME_PREFIX=prefix, LINUX_MCP_LAB_PORT_BASE=str(free_port()))


def init_keys(root: Path, env: dict[str, str]) -> Path:
    """The client and operator keys of a lab under root (`keys init`)."""
    keys_dir = root / "keys"
    _run([CLI, "keys", "init", "--dir", str(keys_dir)], env)
    return keys_dir


@contextmanager
def one_target_lab(root: Path, env: dict[str, str], variables: dict[str, Any]
                   ) -> Iterator[Deployed]:
    """One target with the role applied: the lab's group variables, the keys of
    init_keys(root) and `variables` (operators, approval rules); for tests that need a
    catalog of their own, so the session's shared lab keeps its own. `lab down` after."""
    require_lab()
    keys_dir = root / "keys"
    merged = yaml.safe_load((ANSIBLE / "inventory/group_vars/lab.yml").read_text())
    merged.update({"mcp_infra_keys_dir": str(keys_dir), **variables})
    vars_file = root / "vars.json"
    vars_file.write_text(json.dumps(merged, indent=1))
    _run([CLI, "lab", "up", "--hosts", "1"], env)
    try:
        state = json.loads((root / "lab" / "state.json").read_text())
        handle = Deployed(root=root, env=env, keys_dir=keys_dir, vars_file=vars_file,
                          hosts={name: t["port"] for name, t in state["targets"].items()})
        handle.playbook("deploy-mcp-infra.yml")
        yield handle
    finally:
        subprocess.run([CLI, "lab", "down"], env=env, check=False, capture_output=True,
                       timeout=300, cwd=REPO)


@pytest.fixture(scope="session")
def deployed(tmp_path_factory) -> Deployed:
    """Two lab targets with deploy-mcp-infra.yml applied (see the module docstring)."""
    require_lab()
    root = tmp_path_factory.mktemp("deployed")
    env = dict(os.environ, LINUX_MCP_LAB_DIR=str(root / "lab"),
               LINUX_MCP_LAB_INVENTORY=str(root / "inventory.ini"),
               LINUX_MCP_LAB_NAME_PREFIX=LAB_PREFIX,
               LINUX_MCP_LAB_PORT_BASE=str(_free_ports()))
    keys_dir = root / "keys"
    _make_keys(keys_dir, env)
    vars_file = root / "vars.json"
    _write_vars(vars_file, keys_dir)
    _run([CLI, "lab", "up", "--hosts", str(LAB_HOSTS)], env)
    try:
        state = json.loads((root / "lab" / "state.json").read_text())
        handle = Deployed(root=root, env=env, keys_dir=keys_dir, vars_file=vars_file,
                          hosts={name: t["port"] for name, t in state["targets"].items()})
        handle.pre_deploy = {name: handle.snapshot(name) for name in handle.hosts}
        handle.comment_include(handle.fallback_host)
        handle.playbook("deploy-mcp-infra.yml")
        yield handle
    finally:
        subprocess.run([CLI, "lab", "down"], env=env, check=False, capture_output=True,
                       timeout=300, cwd=REPO)


@pytest.fixture
def env(deployed, tmp_path):
    """Settings of a server and an operator on this machine, for the deployed lab (the
    operator registered)."""
    state = tmp_path / "state"
    env = dict(os.environ, LINUX_MCP_INVENTORY=str(deployed.inventory),
               LINUX_MCP_KEYS_DIR=str(deployed.keys_dir), LINUX_MCP_STATE_DIR=str(state),
               LINUX_MCP_KNOWN_HOSTS=str(state / "known_hosts"),
               LINUX_MCP_AUDIT_LOG=str(state / "audit.jsonl"),
               LINUX_MCP_KEY_SERVICES="ssh,cron,nginx,lab-app")
    # the operator `operator` of allowed_signers, registered as the CLI's approver
    _run([CLI, "operators", "add", "operator", "--public-key",
          str(deployed.keys_dir / "operator.key.pub")], env)
    return env
