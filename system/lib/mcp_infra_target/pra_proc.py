"""Run one action step: argv by absolute path, no shell, fixed environment, stdin /dev/null,
own session, wall-clock timeout, capped output, optionally as another user."""
from __future__ import annotations

import os
import pwd
import selectors
import signal
import subprocess
import time
from typing import Any

BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8", "SYSTEMD_PAGER": "cat", "PAGER": "cat", "SYSTEMD_COLORS": "0"}
EXIT_GRACE_SECONDS = 2.0
CHUNK = 65536


def _identity(user: str | None) -> dict[str, Any]:
    """Popen arguments and environment for running as `user` (None: stay root)."""
    entry = pwd.getpwuid(os.geteuid()) if user is None else pwd.getpwnam(user)
    env = dict(BASE_ENV, HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)
    if user is None:
        return {"env": env}
    return {"env": env, "user": entry.pw_uid, "group": entry.pw_gid,
            "extra_groups": os.getgrouplist(entry.pw_name, entry.pw_gid)}


def _exited(pid: int) -> bool:
    """True once the child has exited; it stays unreaped so its group id cannot be reused."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run(argv: list[str], timeout: float, cap: int, user: str | None = None,
        cwd: str = "/") -> dict[str, Any]:
    """Run `argv`; return {exit, stdout, stderr, timed_out, truncated, duration_ms, error}."""
    start = time.monotonic()
    result: dict[str, Any] = {"argv": argv, "exit": None, "stdout": "", "stderr": "",
                              "timed_out": False, "truncated": False, "duration_ms": 0,
                              "error": None}
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=cwd, close_fds=True,
                                start_new_session=True, umask=0o022, **_identity(user))
    except (OSError, KeyError, subprocess.SubprocessError) as exc:
        result["error"] = "cannot start %s: %s" % (argv[0], exc)
        return result
    buffers = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    deadline = start + timeout
    with selectors.DefaultSelector() as selector:
        for stream in buffers:
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            now = time.monotonic()
            if now >= deadline:
                break
            if _exited(proc.pid):
                deadline = min(deadline, now + EXIT_GRACE_SECONDS)
            for key, _ in selector.select(min(deadline - now, 0.5)):
                data = os.read(key.fd, CHUNK)
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                kept = buffers[key.fileobj]
                room = cap - len(kept)
                kept.extend(data[:max(room, 0)])
                result["truncated"] = result["truncated"] or len(data) > room
    # pipes reach EOF a moment before the child becomes a zombie: wait for it first
    while not _exited(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.005)
    result["timed_out"] = not _exited(proc.pid)
    _kill_group(proc.pid)
    proc.wait()
    for stream in buffers:
        stream.close()
    result["exit"] = proc.returncode
    result["stdout"] = buffers[proc.stdout].decode("utf-8", "replace")
    result["stderr"] = buffers[proc.stderr].decode("utf-8", "replace")
    result["duration_ms"] = int((time.monotonic() - start) * 1000)
    return result
