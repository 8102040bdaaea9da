"""One request on one channel: the command line, optional stdin, a deadline and a byte cap."""

import select
import time
from dataclasses import dataclass

import paramiko

_CHUNK = 65536


@dataclass(frozen=True)
class Completed:
    exit_code: int | None  # None: the cap cut the channel first; -1: the connection was lost
    stdout: bytes
    stderr: bytes
    truncated: bool  # the client-side cap cut the output
    duration_s: float


class Deadline(Exception):
    """The deadline passed; carries the output read so far."""

    def __init__(self, stdout: bytes, stderr: bytes):
        super().__init__("deadline")
        self.stdout, self.stderr = stdout, stderr


def start(channel: paramiko.Channel, command: str, stdin: bytes | None, timeout: float) -> None:
    """Send the request; after this returns the target may be running the command."""
    channel.settimeout(timeout)
    channel.exec_command(command)
    if stdin:
        channel.sendall(stdin)
    channel.shutdown_write()


def collect(channel: paramiko.Channel, deadline: float, cap: int) -> Completed:
    """Read stdout and stderr until the channel ends, the deadline passes or `cap` is reached."""
    began = time.monotonic()
    out, err = bytearray(), bytearray()
    try:
        while True:
            while channel.recv_ready():
                out += channel.recv(_CHUNK)
            while channel.recv_stderr_ready():
                err += channel.recv_stderr(_CHUNK)
            if len(out) + len(err) > cap:
                keep_err = min(len(err), cap // 4)
                return Completed(None, bytes(out[:cap - keep_err]), bytes(err[:keep_err]), True,
                                 time.monotonic() - began)
            if (channel.eof_received or channel.closed) and not channel.recv_ready() \
                    and not channel.recv_stderr_ready():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Deadline(bytes(out), bytes(err))
            select.select([channel], [], [], remaining)
        remaining = deadline - time.monotonic()
        if not channel.status_event.wait(max(remaining, 0)):
            raise Deadline(bytes(out), bytes(err))
        return Completed(channel.recv_exit_status(), bytes(out), bytes(err), False,
                         time.monotonic() - began)
    finally:
        channel.close()
