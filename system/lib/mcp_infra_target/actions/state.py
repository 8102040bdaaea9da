"""Root-owned state of pra-run under /var/lib/mcp-infra: the nonce ledger and done markers.

Nonce ledger (`nonces/`): one file per used nonce, named by the nonce's SHA-256, created with
O_CREAT|O_EXCL and fsynced before anything runs. A crash after recording therefore burns the
nonce; it can never allow a replay. Each entry holds its document's `not_after`; once that
is more than the clock skew in the past, the document is refused `expired` before the ledger
is consulted (pra-run checks the window first), so the entry has nothing left to refuse and
`prune_nonces` removes it (after an accepted attempt, under the run lock, a bounded number
of entries per call). An entry without an integer `not_after` (not written by pra-run: every
version has written it) is kept.

Run lock (`run.lock`): one action at a time per host, so that a check's answer still holds
when its run starts; taken before the nonce is recorded, so waiting in vain burns nothing.

Done markers (`done/`): when an action with an idempotency window changed something, a file
named by the SHA-256 of (action, params) records the time; a later approval for the same
action and params within the window is `already-satisfied`.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import stat
import time
from typing import Any

from mcp_infra_target.actions.approval import canonical
from mcp_infra_target.core.bootstrap import UntrustedPath, check_entry
from mcp_infra_target.core.refusal import Refusal

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
PRUNE_SCAN_MAX = 512
ENTRY_READ_MAX = 1 << 20  # an entry holds params: at most 16 catalog values


def _open_checked(path: str, dir_fd: int | None, private: bool) -> int:
    """Open directory `path` (no symlink followed) and apply the one ownership rule to what
    was opened (owner: pra-run itself; no sticky exception); a `private` one (the ledger's
    and the markers' own directories) is not even readable by others."""
    try:
        fd = os.open(path, DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        raise Refusal("config_error", "config/state_dir", "state directory unusable") from None
    info = os.fstat(fd)
    try:
        check_entry(path, info, {os.geteuid()}, sticky=False)
        if private and stat.S_IMODE(info.st_mode) & 0o077:
            raise UntrustedPath(f"{path}: readable by others")
    except UntrustedPath:
        os.close(fd)
        raise Refusal("config_error", "config/state_dir",
                      "state directory not private to root") from None
    return fd


def _open_dir(state_dir: str, sub: str) -> int:
    """Open `state_dir`/`sub` (created 0700 if missing); both must be root's alone."""
    parent = _open_checked(state_dir, None, private=False)
    try:
        try:
            os.mkdir(sub, 0o700, dir_fd=parent)
        except FileExistsError:
            pass
        except OSError:
            raise Refusal("config_error", "config/state_dir", "cannot create state directory") from None
        return _open_checked(sub, parent, private=True)
    finally:
        os.close(parent)


def _write_new(dir_fd: int, name: str, data: bytes) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=dir_fd)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.fsync(dir_fd)


@contextlib.contextmanager
def exclusive(state_dir: str, wait_seconds: float):
    """Hold the host's run lock; refuse `busy` if another action holds it past the wait."""
    dir_fd = _open_checked(state_dir, None, private=False)
    try:
        fd = os.open("run.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dir_fd)
    except OSError:
        raise Refusal("config_error", "config/state_dir", "cannot open the run lock") from None
    finally:
        os.close(dir_fd)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Refusal("busy", "state/run_lock", "another action is running on this host")
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def nonce_name(nonce: str) -> str:
    """Ledger file name of a nonce."""
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()


def record_nonce(state_dir: str, nonce: str, entry: dict[str, Any]) -> None:
    """Record `nonce` as used, durably; refuse `replayed_nonce` if it was recorded before."""
    dir_fd = _open_dir(state_dir, "nonces")
    try:
        _write_new(dir_fd, nonce_name(nonce), json.dumps(entry, sort_keys=True).encode() + b"\n")
    except FileExistsError:
        raise Refusal("replayed_nonce", "state/nonce", "this approval was already used") from None
    except OSError:
        raise Refusal("config_error", "config/nonce_ledger", "cannot record the nonce") from None
    finally:
        os.close(dir_fd)


def nonce_recorded(state_dir: str, nonce: str) -> bool:
    """Whether `nonce` is in the ledger (a plan's earlier step ran on this host)."""
    dir_fd = _open_dir(state_dir, "nonces")
    try:
        os.stat(nonce_name(nonce), dir_fd=dir_fd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(dir_fd)


def _entry_not_after(dir_fd: int, name: str) -> int | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as handle:
            value = json.loads(handle.read(ENTRY_READ_MAX)).get("not_after")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return value if type(value) is int else None


def prune_nonces(state_dir: str, now: int, skew: int,
                 scan_max: int = PRUNE_SCAN_MAX) -> dict[str, int]:
    """Remove ledger entries whose `not_after` + `skew` is before `now`, looking at no more
    than `scan_max` entries (so a huge ledger costs a run little; each accepted run adds one
    entry and may remove up to `scan_max`). Returns what it did, for the log."""
    dir_fd = _open_dir(state_dir, "nonces")
    counts = {"scanned": 0, "removed": 0, "kept": 0, "unreadable": 0}
    try:
        with os.scandir(dir_fd) as entries:
            for entry in entries:
                if counts["scanned"] >= scan_max:
                    break
                counts["scanned"] += 1
                not_after = _entry_not_after(dir_fd, entry.name)
                if not_after is None:
                    counts["unreadable"] += 1
                elif not_after + skew < now:
                    os.unlink(entry.name, dir_fd=dir_fd)
                    counts["removed"] += 1
                else:
                    counts["kept"] += 1
        if counts["removed"]:
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return counts


def _marker_name(action: str, params: dict[str, str]) -> str:
    return hashlib.sha256(canonical([action, params])).hexdigest()


def last_done(state_dir: str, action: str, params: dict[str, str]) -> int | None:
    """Unix time of the last change made by `action` with `params`, or None."""
    dir_fd = _open_dir(state_dir, "done")
    try:
        fd = os.open(_marker_name(action, params), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as handle:
            when = json.loads(handle.read(4096)).get("time")
        return when if type(when) is int else None
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    finally:
        os.close(dir_fd)


def mark_done(state_dir: str, action: str, params: dict[str, str], entry: dict[str, Any]) -> None:
    """Record that `action` with `params` changed something at entry["time"] (atomic replace)."""
    dir_fd = _open_dir(state_dir, "done")
    name = _marker_name(action, params)
    temp = "%s.%d.tmp" % (name, os.getpid())
    try:
        try:
            os.unlink(temp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        _write_new(dir_fd, temp, json.dumps(entry, sort_keys=True).encode() + b"\n")
        os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
