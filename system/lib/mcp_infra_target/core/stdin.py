"""Reading a client's whole stdin, bounded in size and in time: a client that never closes
it, or sends too much, cannot hold a target tool (mcp:batch documents, approval envelopes)."""
from __future__ import annotations

import os
import select
import time

CHUNK = 65536


class InputTooLarge(Exception):
    """More than the limit arrived."""


class InputTimeout(Exception):
    """The stream was still open at the deadline."""


def read_all(fd: int, max_bytes: int, timeout_s: float) -> bytes:
    """Read `fd` to end of input within `timeout_s`; at most `max_bytes` (InputTooLarge past
    it, InputTimeout if it is still open at the deadline)."""
    deadline = time.monotonic() + timeout_s
    data = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise InputTimeout()
        chunk = os.read(fd, min(CHUNK, max_bytes + 1 - len(data)))
        if not chunk:
            return bytes(data)
        data.extend(chunk)
        if len(data) > max_bytes:
            raise InputTooLarge()
