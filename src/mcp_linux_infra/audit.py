"""The audit trail: structlog JSON lines to a file and to stderr, never stdout.

In stdio mode stdout is the MCP wire; one stray line there breaks the client. Secrets are
redacted by key name (token, password, ...) and by shape (bearer tokens, private key blocks)
before anything is written. Every tool call has one trace id, also sent to the target as
`mcp:trace=ID`, so the target's syslog record and ours join.
"""

import os
import re
import secrets
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

import structlog

REDACTED = "[REDACTED]"
_SECRET_KEYS = re.compile(r"(pass(word|phrase)?|secret|token|authorization|api[_-]?key|"
                          r"private[_-]?key|credential|cookie)", re.IGNORECASE)
_SECRET_VALUES = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)",
                re.DOTALL), REDACTED),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"(?i)\b((?:pass(?:word)?|passwd|pwd|secret|token|api[_-]?key)\s*[=:]\s*)"
                r"(\"[^\"]*\"|'[^']*'|\S+)"), r"\1" + REDACTED),
    (re.compile(r"(?i)(--?(?:pass(?:word)?|passwd|token|secret|api[_-]?key)(?:=|\s+))(\S+)"),
     r"\1" + REDACTED),
]


def new_trace_id() -> str:
    return secrets.token_hex(8)


def redact(value: Any, key: str = "") -> Any:
    """A copy of `value` with secrets replaced; dicts and lists are walked."""
    if key and _SECRET_KEYS.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        for pattern, replacement in _SECRET_VALUES:
            value = pattern.sub(replacement, value)
    return value


def _redact_processor(logger: Any, method: str, event: dict) -> dict:
    return redact(event)


class _Tee:
    """A structlog logger writing each rendered line to the audit file and to stderr."""

    def __init__(self, path: Path | None, stream: TextIO):
        self._lock = threading.Lock()
        self._stream = stream
        self._file = None
        if path is not None:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._file = os.fdopen(fd, "a", buffering=1)

    def msg(self, line: str) -> None:
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")
            self._stream.write(line + "\n")
            self._stream.flush()

    debug = info = warning = error = critical = exception = msg

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Audit:
    """`audit.info("event", key=value, ...)` writes one redacted JSON line to file and stderr."""

    def __init__(self, path: Path | None, stream: TextIO | None = None):
        self._tee = _Tee(path, stream if stream is not None else sys.stderr)
        self._log = structlog.wrap_logger(self._tee, processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_processor,
            structlog.processors.JSONRenderer(sort_keys=True),
        ])

    def info(self, event: str, **fields: Any) -> None:
        self._log.info(event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log.warning(event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log.error(event, **fields)

    def close(self) -> None:
        self._tee.close()
