"""`mcp:session`: many requests over one channel, one JSON line each way.

A new channel costs the target a shell, an interpreter and the library's imports (tens of
milliseconds of CPU); a session pays that once. Each request is handled exactly like a
request on its own channel (same screen, tokeniser, policy, limits and audit record); only
the framing differs. The session ends at end of input, after `session_idle_s` without a
request, after `session_max_requests` or `session_max_s`, at the first frame that is not
well-formed (answered with the refusal first) and when the client stops reading.

Frames (UTF-8 JSON, one per line):
  hello    {"mcp_session": {"version", "idle_s", "max_requests", "max_s", "line_max_bytes"}}
  request  {"id": ID, "command": TEXT, "stdin": BASE64?}     (stdin: for mcp:batch only)
  answer   {"id": ID, "exit": N, "stdout": BASE64, "stderr": BASE64}
"""

import base64
import binascii
import json
import os
import select
import time

from mcp_infra_target.core.refusal import EXIT_REFUSED, LABEL, ClientGone, Refusal
from mcp_infra_target.readonly.clientio import write_all

RULE = "request/session"
_FRAME_KEYS = {"id", "command", "stdin"}


def line_max_bytes(limits: dict) -> int:
    """Room for the longest request and the largest batch document, base64-encoded."""
    return limits["request_max_bytes"] * 6 + (limits["batch_stdin_max_bytes"] * 4 // 3) + 1024


def settings(limits: dict) -> dict:
    return {"idle_s": limits["session_idle_s"], "max_requests": int(limits["session_max_requests"]),
            "max_s": limits["session_max_s"], "line_max_bytes": line_max_bytes(limits)}


class _Lines:
    """Lines from a descriptor, each at most `max_bytes`, waiting at most `idle_s` for one."""

    def __init__(self, fd, max_bytes):
        self.fd, self.max_bytes, self.buffer, self.eof = fd, max_bytes, b"", False

    def next(self, idle_s):
        """The next line without its newline; None at end of input or when idle too long."""
        deadline = time.monotonic() + idle_s
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line, self.buffer = self.buffer[:end], self.buffer[end + 1:]
                if end > self.max_bytes:
                    raise Refusal("session_line_too_long", RULE,
                                  "a frame of more than %d bytes" % self.max_bytes)
                return line
            if len(self.buffer) > self.max_bytes:
                raise Refusal("session_line_too_long", RULE,
                              "a frame of more than %d bytes" % self.max_bytes)
            if self.eof:
                if self.buffer:
                    raise Refusal("session_bad_frame", RULE, "input ended inside a frame")
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if chunk:
                self.buffer += chunk
            else:
                self.eof = True


def parse(line: bytes) -> tuple:
    """(id, raw command bytes, stdin bytes) from one request frame, or a Refusal. The line
    cap bounds stdin; its size is judged where a batch reads it, as on a channel."""
    try:
        frame = json.loads(line.decode("utf-8", "strict"))
    except ValueError as error:
        raise Refusal("session_bad_frame", RULE, "not JSON: %s" % str(error)[:200])
    except RecursionError:  # nesting deeper than the interpreter's stack: still not a frame
        raise Refusal("session_bad_frame", RULE, "not JSON: nested too deeply")
    if not isinstance(frame, dict) or not {"id", "command"} <= set(frame) <= _FRAME_KEYS:
        raise Refusal("session_bad_frame", RULE, 'expected {"id", "command", "stdin"?}')
    ident, command, stdin = frame["id"], frame["command"], frame.get("stdin")
    if not isinstance(ident, str) or not LABEL.fullmatch(ident):
        raise Refusal("session_bad_frame", RULE, "id must match %s" % LABEL.pattern)
    if not isinstance(command, str):
        raise Refusal("session_bad_frame", RULE, "command must be text")
    try:
        raw = command.encode("utf-8", "strict")
    except UnicodeEncodeError:
        raise Refusal("invalid_utf8", RULE, "the command is not valid Unicode text")
    data = b""
    if stdin is not None:
        if not isinstance(stdin, str):
            raise Refusal("session_bad_frame", RULE, "stdin must be base64 text")
        try:
            data = base64.b64decode(stdin.encode("ascii"), validate=True)
        except (ValueError, binascii.Error):
            raise Refusal("session_bad_frame", RULE, "stdin is not base64")
    return ident, raw, data


def _send(fd, document, deadline):
    """One frame, waiting for the client at most until `deadline` (clientio.write_all)."""
    data = (json.dumps(document, ensure_ascii=True, sort_keys=True) + "\n").encode("ascii")
    write_all(fd, data, deadline)


def _b64(data):
    return base64.b64encode(bytes(data)).decode("ascii")


def _refuse(fd, refusal, deadline):
    """The frame-level refusal (`"id": null`): the last thing a session says."""
    _send(fd, {"id": None, "exit": EXIT_REFUSED, "stdout": "",
               "stderr": _b64((refusal.json_line() + "\n").encode("ascii"))}, deadline)


def serve(handle, limits: dict, record: dict, stdin_fd: int = 0, stdout_fd: int = 1) -> int:
    """Answer requests until the session ends; `handle(raw, stdin) -> (exit, out, err,
    deadline)` is the one-request pipeline (refusals included): its answer waits for the
    client at most until that request's deadline; the session's own frames (hello, a frame
    refusal) at most `idle_s`. Fills `record` with how the session went."""
    config = settings(limits)
    lines = _Lines(stdin_fd, config["line_max_bytes"])
    started = time.monotonic()
    served = 0
    try:
        _send(stdout_fd, {"mcp_session": dict(config, version=record.get("version"))},
              started + config["idle_s"])
        while True:
            left = config["max_s"] - (time.monotonic() - started)
            if served >= config["max_requests"] or left <= 0:
                ended = "max_requests" if left > 0 else "max_s"
                break
            line = lines.next(min(config["idle_s"], left))
            if line is None:
                ended = "end_of_input" if lines.eof else "idle"
                break
            ident, raw, data = parse(line)
            code, out, err, deadline = handle(raw, data)
            served += 1
            _send(stdout_fd, {"id": ident, "exit": code, "stdout": _b64(out), "stderr": _b64(err)},
                  deadline)
    except Refusal as refusal:  # a frame malformed, too long or cut short: say why, then stop
        ended = "bad_frame:" + refusal.reason
        try:
            _refuse(stdout_fd, refusal, time.monotonic() + config["idle_s"])
        except ClientGone:
            pass
    except ClientGone as gone:
        ended = "client_gone"
        record["client_gone"] = gone.why
    record["session"] = {"requests": served, "ended": ended}
    return 0
