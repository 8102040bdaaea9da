"""Writes to the client, each bounded by the request's deadline.

The client's end of the channel (fds 1 and 2 under sshd) is made non-blocking, so a client
that stops reading cannot hold the wrapper, nor the command it runs, past the deadline: a
write waits for room only until then, and a client that has not made room by then is gone
(`ClientGone("not_reading")`), exactly like one that closed the channel (`"closed"`).
"""

import fcntl
import os
import select
import time

from mcp_infra_target.core.refusal import ClientGone


def set_nonblocking(fd: int) -> "int | None":
    """Make `fd` non-blocking; returns its previous flags (for `restore`), None if it is not open."""
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    except OSError:
        return None
    return flags


def restore(fd: int, flags: "int | None") -> None:
    if flags is not None:
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, flags)
        except OSError:
            pass


def write_all(fd: int, data: bytes, deadline: float) -> None:
    """Write all of `data` to `fd`, waiting for room at most until `deadline` (monotonic)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
            continue
        except BlockingIOError:
            pass
        except OSError:  # EPIPE and friends: the client left
            raise ClientGone("closed")
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
            raise ClientGone("not_reading")
