"""`lab up`, `lab status`, `lab down`: reconcile the targets with what the lab state records."""

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mcp_linux_infra.errors import UserError
from mcp_linux_infra.lab import image as lab_image
from mcp_linux_infra.lab import target as lab_target
from mcp_linux_infra.lab.inventory import write_inventory, write_known_hosts
from mcp_linux_infra.lab.mounts import mounts_under
from mcp_linux_infra.lab.process import alive, terminate
from mcp_linux_infra.lab.state import LabState, Target
from mcp_linux_infra.programs import require
from mcp_linux_infra.settings import Settings

MAX_HOSTS = 64
Status = Callable[[str], None]
Ready = Callable[[int, int, str], None]  # (targets ready so far, of how many, the last one)


@dataclass(frozen=True)
class LabPaths:
    root: Path
    key: Path
    known_hosts: Path
    state: Path
    targets: Path
    inventory: Path

    @classmethod
    def of(cls, settings: Settings) -> "LabPaths":
        root = settings.lab_dir.resolve()
        return cls(root=root, key=root / "bootstrap_ed25519", known_hosts=root / "known_hosts",
                   state=root / "state.json", targets=root / "targets",
                   inventory=settings.lab_inventory.resolve())


@dataclass(frozen=True)
class TargetStatus:
    name: str
    port: int
    pid: int
    process: str  # "running" or "stopped"
    system: str  # systemd's is-system-running answer, or "unreachable"


def _require_root() -> None:
    if os.geteuid() != 0:
        raise UserError("the lab needs root (systemd-nspawn and overlay mounts)",
                        hint="run it as root, for example with sudo")


@contextmanager
def _locked(paths: LabPaths):
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(paths.root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _names(settings: Settings, hosts: int) -> list[str]:
    return [f"{settings.lab_name_prefix}-{i:02d}" for i in range(1, hosts + 1)]


def _ensure_bootstrap_key(paths: LabPaths) -> None:
    if not paths.key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                        "mcp-linux-infra lab bootstrap (root, Ansible)", "-f", str(paths.key)],
                       check=True, timeout=60)


def _host_key(t: Target) -> str:
    pub = Path(t.upper) / "etc/ssh/ssh_host_ed25519_key.pub"
    return " ".join(pub.read_text().split()[:2])


def _publish(paths: LabPaths, settings: Settings, state: LabState) -> None:
    """Rewrite known_hosts and the inventory from the running targets (removed when none)."""
    targets = list(state.targets.values())
    if not targets:
        paths.known_hosts.unlink(missing_ok=True)
        paths.inventory.unlink(missing_ok=True)
        return
    write_known_hosts(paths.known_hosts, {t.port: _host_key(t) for t in targets})
    write_inventory(paths.inventory, targets, paths.key, paths.known_hosts,
                    group=settings.lab_name_prefix)


def _forget(state: LabState, names: list[str]) -> None:
    """Drop targets from the state and delete their disposable overlays and cgroups."""
    for name in names:
        t = state.targets.pop(name)
        lab_target.remove_cgroups(lab_target.machine_name(name, Path(t.upper)))
        upper_root = Path(t.upper).parent
        if mounts_under(upper_root):
            raise UserError(f"{name}: {upper_root} is still mounted; not deleting it")
        shutil.rmtree(upper_root, ignore_errors=True)


def _prune_dead(state: LabState) -> list[str]:
    dead = [n for n, t in state.targets.items() if not alive(t.pid, t.started)]
    _forget(state, dead)
    return dead


INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_PER_TARGET = 8  # measured: a booted Debian 12 target's systemd and services use ~7


def _ensure_inotify_instances(targets: int, status: Status) -> None:
    """Each target's systemd needs inotify instances, and all of them count against root's
    one per-user limit (128 by default: about 15 targets). Raise the running value (never
    lower it; not persisted) to fit the lab, and say so."""
    needed = INOTIFY_PER_TARGET * targets + 128
    current = int(INOTIFY_LIMIT.read_text())
    if current < needed:
        INOTIFY_LIMIT.write_text(f"{needed}\n")
        status(f"raised fs.inotify.max_user_instances from {current} to {needed} "
               f"for {targets} targets (until reboot)")


def up(settings: Settings, hosts: int, status: Status = lambda _: None,
       ready: Ready = lambda done, total, name: None) -> list[str]:
    """Start the missing targets among prefix-01..prefix-NN; return the names started."""
    if not 1 <= hosts <= MAX_HOSTS:
        raise UserError(f"--hosts must be between 1 and {MAX_HOSTS}, not {hosts}")
    _require_root()
    require("systemd-nspawn", "debootstrap", "ssh", "ssh-keygen", "systemctl")
    paths = LabPaths.of(settings)
    with _locked(paths):
        state = LabState.load(paths.state)
        _prune_dead(state)
        wanted = [n for n in _names(settings, hosts) if n not in state.targets]
        if not wanted:
            _publish(paths, settings, state)
            state.save(paths.state)
            return []
        ports = {n: settings.lab_port_base + i for i, n in enumerate(_names(settings, hosts))}
        sockets = {}
        try:
            for name in wanted:  # every port is checked before anything starts
                sockets[name] = lab_target.bind_port(ports[name])
            img = lab_image.ensure_image(settings.lab_cache_dir, settings.lab_mirror, status)
            _ensure_inotify_instances(len(state.targets) + len(wanted), status)
            _ensure_bootstrap_key(paths)
            status(f"booting {len(wanted)} target(s)")
            started: list[Target] = []
            try:
                for name in wanted:
                    tdir = paths.targets / name
                    shutil.rmtree(tdir, ignore_errors=True)
                    tdir.mkdir(parents=True)
                    lab_target.prepare(img.rootfs, tdir / "upper", name, ports[name],
                                       paths.key.with_name(paths.key.name + ".pub"))
                    t = lab_target.spawn(img.rootfs, tdir / "upper", name, ports[name],
                                         sockets[name], tdir / "console.log")
                    started.append(t)
                    state.targets[name] = t
                    state.image = str(img.rootfs)
                    state.save(paths.state)
                _publish(paths, settings, state)
                status("waiting for sshd and systemd on every target")
                deadline = time.monotonic() + settings.lab_boot_timeout
                with ThreadPoolExecutor(max_workers=min(16, len(started))) as pool:
                    waits = {pool.submit(lab_target.wait_ready, t, paths.key,
                                         paths.known_hosts, deadline): t.name for t in started}
                    for done, wait in enumerate(as_completed(waits), 1):
                        wait.result()
                        ready(done, len(started), waits[wait])
            except BaseException:
                status("start failed: stopping the targets this command started")
                terminate([(t.pid, t.started) for t in started], grace=30)
                _forget(state, [t.name for t in started])
                state.save(paths.state)
                _publish(paths, settings, state)
                raise
        finally:
            for sock in sockets.values():
                sock.close()
        return wanted


def status(settings: Settings) -> list[TargetStatus]:
    paths = LabPaths.of(settings)
    state = LabState.load(paths.state)

    def one(t: Target) -> TargetStatus:
        running = alive(t.pid, t.started)
        system = (lab_target.system_state(t, paths.key, paths.known_hosts, wait=False)
                  if running else "-")
        return TargetStatus(t.name, t.port, t.pid, "running" if running else "stopped", system)

    targets = sorted(state.targets.values(), key=lambda t: t.name)
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
        return list(pool.map(one, targets))


def down(settings: Settings) -> list[str]:
    """Stop exactly the processes the lab started (by PID and start time); remove their files."""
    _require_root()
    paths = LabPaths.of(settings)
    if not paths.state.exists():
        return []
    with _locked(paths):
        state = LabState.load(paths.state)
        names = sorted(state.targets)
        terminate([(t.pid, t.started) for t in state.targets.values()], grace=45)
        _forget(state, names)
        _publish(paths, settings, state)
        paths.state.unlink(missing_ok=True)
        shutil.rmtree(paths.targets, ignore_errors=True)
        return names
