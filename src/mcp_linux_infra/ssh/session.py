"""`mcp:session` on the client side: requests to one host's wrapper over a kept channel.

A request on a channel of its own makes the target start a shell, an interpreter and the
wrapper's imports (about 35 ms of its CPU); a session pays that once and then answers a
request in about 2 ms (system/README.md has the protocol). The pool uses sessions for the
read-only tier only: its requests may be sent again, which is what makes the transparent
retry of a request that met a session just ended (idle, limits) harmless.
"""

import base64
import binascii
import json
import select
import time
from itertools import count

import paramiko

from mcp_linux_infra.ssh.channel import Completed, Deadline

_CHUNK = 65536
IDLE_MARGIN_S = 2.0  # a session this close to its idle limit is not used again: it may be ending
HELLO_BACKOFF_S = 60.0  # a host whose session did not say hello in time gets channels meanwhile


class SessionEnded(Exception):
    """The session ended before this request was answered; nothing of the answer came."""


class NoSessions(Exception):
    """The target's wrapper does not offer sessions (an older wrapper) or did not say hello
    in time: use a channel; `until` is how long to stop asking (inf: for good)."""

    def __init__(self, until: float):
        super().__init__("the target offers no sessions")
        self.until = until


class UseChannel(Exception):
    """An answer larger than the client's cap or not in the protocol's shape: the request
    goes on a channel of its own, which streams, caps and reports whatever happens."""


class Session:
    def __init__(self, transport: paramiko.Transport, channel: paramiko.Channel, cap: int):
        self.transport, self.channel = transport, channel
        self.idle_s = 0.0  # the target's idle limit, from its hello
        self.line_cap = cap * 4 // 3 + 65536  # base64 of the capped output, and the frame
        self.buffer = b""
        self.last_used = time.monotonic()
        self.ids = count(1)

    @classmethod
    def open(cls, transport: paramiko.Transport, timeout: float, cap: int) -> "Session":
        """Start `mcp:session` and read its hello; NoSessions if the wrapper answered
        anything else (its refusal of an unknown reserved word)."""
        channel = transport.open_session(timeout=timeout)
        try:
            channel.settimeout(timeout)
            channel.exec_command("mcp:session")
            session = cls(transport, channel, cap)
            try:
                line = session._line(time.monotonic() + timeout)
                session.idle_s = float(json.loads(line)["mcp_session"]["idle_s"])
            except (SessionEnded, ValueError, KeyError, TypeError):
                raise NoSessions(float("inf")) from None
            except Deadline:
                raise NoSessions(time.monotonic() + HELLO_BACKOFF_S) from None
            return session
        except BaseException:
            channel.close()
            raise

    def usable(self) -> bool:
        """Open, on a live transport, and not about to end for idleness."""
        return (self.transport.is_active() and not self.channel.closed
                and not self.channel.eof_received
                and time.monotonic() - self.last_used < self.idle_s - IDLE_MARGIN_S)

    def _line(self, deadline: float) -> bytes:
        while b"\n" not in self.buffer:
            if len(self.buffer) > self.line_cap:
                raise UseChannel("answer larger than the client's cap")
            if self.channel.recv_ready():
                self.buffer += self.channel.recv(_CHUNK)
                continue
            if self.channel.eof_received or self.channel.closed:
                raise SessionEnded()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Deadline(b"", b"")
            select.select([self.channel], [], [], remaining)
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def request(self, command: str, stdin: bytes | None, deadline: float) -> Completed:
        """One request, answered as if on its own channel (exit code, stdout, stderr)."""
        began = time.monotonic()
        ident = str(next(self.ids))
        frame = {"id": ident, "command": command}
        if stdin:
            frame["stdin"] = base64.b64encode(stdin).decode("ascii")
        try:
            self.channel.sendall(json.dumps(frame).encode("utf-8") + b"\n")
        except (OSError, EOFError, paramiko.SSHException):
            raise SessionEnded() from None
        line = self._line(deadline)
        self.last_used = time.monotonic()
        try:
            answer = json.loads(line)
            done = Completed(int(answer["exit"]), base64.b64decode(answer["stdout"]),
                             base64.b64decode(answer["stderr"]), False,
                             time.monotonic() - began)
            if answer["id"] not in (ident, None):
                raise ValueError(f"answer to {answer['id']!r}, not {ident!r}")
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            self.close()
            raise UseChannel(f"malformed session answer: {exc}") from None
        if answer["id"] is None:  # the wrapper refused the frame itself and left
            self.close()
        return done

    def close(self) -> None:
        self.channel.close()

