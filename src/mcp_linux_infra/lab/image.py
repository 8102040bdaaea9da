"""The lab image: one Debian 12 rootfs, built once with debootstrap and cached by recipe hash.

A build happens in a scratch directory and becomes the image only by an atomic rename at the
very end, so a failed or interrupted build never looks like a good image.
"""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mcp_linux_infra.errors import UserError
from mcp_linux_infra.lab.mounts import mounts_under

SUITE = "bookworm"
PACKAGES = (
    # the init system and the way in
    "systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "python3",
    # what diagnostics look at
    "iproute2", "procps", "psmisc", "lsof", "sysstat", "net-tools", "iputils-ping",
    "bind9-dnsutils", "kmod", "curl", "ca-certificates", "less",
    # real services: healthy web server and DNS cache, logs, scheduled jobs, a Django app's deps
    "nginx-light", "unbound", "rsyslog", "logrotate", "cron", "python3-django",
)
ENABLE_UNITS = ("lab-ssh-proxy.socket", "lab-broken.service", "lab-app.service",
                "lab-outage.service")
# Bump when the provisioning steps below change in a way the file tree does not show.
RECIPE_VERSION = 1


@dataclass(frozen=True)
class Image:
    rootfs: Path
    recipe: str


def _files_root() -> Path:
    return Path(str(resources.files("mcp_linux_infra.lab") / "files"))


def recipe_hash(mirror: str) -> str:
    """Changes whenever what the image would contain changes."""
    h = hashlib.sha256()
    h.update(json.dumps([RECIPE_VERSION, SUITE, PACKAGES, ENABLE_UNITS, mirror]).encode())
    root = _files_root()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(oct(path.stat().st_mode & 0o777).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _run(argv: list[str], log, timeout: float) -> None:
    log.write(f"\n$ {' '.join(argv)}\n".encode())
    log.flush()
    try:
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                       check=True, timeout=timeout)
    except subprocess.CalledProcessError as exc:
        raise UserError(f"image build step failed (exit {exc.returncode}): {' '.join(argv)}",
                        hint=f"see the build log {log.name}") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"image build step timed out after {timeout:.0f}s: {' '.join(argv)}",
                        hint=f"see the build log {log.name}") from None


def _provision(rootfs: Path, log) -> None:
    """Lab services, the sshd door, and no host keys: each target gets its own at boot time."""
    shutil.copytree(_files_root(), rootfs, dirs_exist_ok=True)
    enabled = rootfs / "etc/nginx/sites-enabled/default"
    enabled.unlink(missing_ok=True)
    enabled.symlink_to("/etc/nginx/sites-available/default")
    _run(["systemctl", f"--root={rootfs}", "enable", *ENABLE_UNITS], log, 60)
    # lab-app's state (SQLite database, collected static files) belongs to its user; migrations
    # are left unapplied on purpose, for django_manage to apply.
    (rootfs / "var/lib/lab-app").mkdir(exist_ok=True)
    _run(["chroot", str(rootfs), "chown", "www-data:www-data", "/var/lib/lab-app"], log, 60)
    # Package lists, so that "which updates are pending" has a true answer on the targets.
    _run(["chroot", str(rootfs), "apt-get", "-q", "update"], log, 600)
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (rootfs / "etc/machine-id").write_text("")
    (rootfs / "etc/hostname").write_text("lab\n")


def _remove_tree(path: Path) -> None:
    """Delete a scratch build, refusing to recurse through anything still mounted."""
    for point in mounts_under(path):
        subprocess.run(["umount", "--lazy", str(point)], check=False)
    if mounts_under(path):
        raise UserError(f"cannot remove {path}: something is still mounted below it")
    shutil.rmtree(path, ignore_errors=False)


def ensure_image(cache_dir: Path, mirror: str, status=None) -> Image:
    """Return the cached image for the current recipe, building it first if needed."""
    recipe = recipe_hash(mirror)
    images = cache_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    final = images / f"debian12-{recipe}"
    with open(images / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "image.json").exists():
            return Image(final / "rootfs", recipe)
        for stale in images.glob(".build-*"):
            _remove_tree(stale)
        scratch = images / f".build-{recipe}-{os.getpid()}"
        scratch.mkdir()
        log_path = images / f"build-{recipe}.log"
        try:
            with open(log_path, "wb") as log:
                if status:
                    status(f"debootstrap {SUITE} (about a minute; log: {log_path})")
                _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                      SUITE, str(scratch / "rootfs"), mirror], log, 1500)
                if status:
                    status("provisioning lab services")
                _provision(scratch / "rootfs", log)
            (scratch / "image.json").write_text(json.dumps({
                "recipe": recipe, "suite": SUITE, "packages": PACKAGES,
                "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=1))
            if final.exists():  # left by hand without its marker: not an image
                _remove_tree(final)
            os.replace(scratch, final)
        except BaseException:
            _remove_tree(scratch)
            raise
        return Image(final / "rootfs", recipe)
