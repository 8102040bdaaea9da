"""Process identity by PID *and* start time, so a recycled PID is never signalled by mistake."""

import os
import signal
import time
from pathlib import Path


def start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def alive(pid: int, started: int) -> bool:
    """True if `pid` still is the very process that was started at `started` (and not a zombie)."""
    if start_time(pid) != started:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def terminate(procs: list[tuple[int, int]], grace: float) -> list[int]:
    """SIGTERM each (pid, start) still alive, SIGKILL what outlives `grace`; return killed PIDs."""
    for pid, started in procs:
        if alive(pid, started):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p, s) for p, s in procs):
        time.sleep(0.2)
    killed = []
    for pid, started in procs:
        if alive(pid, started):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p, s) for p, s in procs):
        time.sleep(0.1)
    return killed
