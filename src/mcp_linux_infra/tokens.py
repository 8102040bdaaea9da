"""Bearer tokens of `serve --transport http`, in one file: `tokens new|list|revoke` write it,
the running server reads it again whenever it changes (a revoke needs no restart).

The file (JSON, mode 0600, replaced atomically) holds no secret: per token its SHA-256, a
unique name, its scopes (a closed set), the inventory groups it is limited to (none: every
host) and when it was made. When each token was last used is the server's to know: it keeps
that in the state directory (LastUsed), never in this file, so the file is only ever written
by a person's command.
"""

import fcntl
import hashlib
import hmac
import json
import os
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_serializer

from mcp_linux_infra.errors import EXIT_CONFIG, EXIT_SYSTEM, EXIT_USAGE, UserError

Scope = Literal["read", "propose", "execute", "metrics"]
SCOPES: tuple[str, ...] = Scope.__args__
NAME = r"^[A-Za-z0-9._-]{1,64}$"
GROUP = r"^[A-Za-z0-9_.-]{1,128}$"
LAST_USED = "tokens-last-used.json"  # in the state directory
FLUSH_EVERY = 60.0  # seconds: the most often one token's "last used" is written


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def iso(at: datetime) -> str:
    """ISO 8601 in UTC to the second, as the CLI's JSON has times: 2026-12-05T12:14:03+00:00."""
    return at.astimezone(UTC).isoformat(timespec="seconds")


class TokenSpec(BaseModel):
    """A bearer token as stored: only its SHA-256."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: tuple[Scope, ...] = Field(("read",), min_length=1)
    groups: tuple[str, ...] | None = Field(None, min_length=1)
    created: datetime

    @field_serializer("created")
    def _created(self, created: datetime) -> str:
        return iso(created)

    def public(self, last_used: str | None) -> dict:
        return {"name": self.name, "scopes": list(self.scopes),
                "groups": None if self.groups is None else list(self.groups),
                "created": iso(self.created),
                "last_used": last_used}


_SPECS = TypeAdapter(list[TokenSpec])


def read_tokens(path: Path) -> list[TokenSpec] | None:
    """The file's tokens; None when there is no file (then the server needs none)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UserError(f"tokens file {path}: {exc.strerror}", exit_code=EXIT_SYSTEM) from None
    if not text.strip():
        return []  # made empty on purpose (`install -m 0600 /dev/null`): no token yet
    try:
        specs = _SPECS.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"tokens file {path}: {where}: {first['msg']}",
                        hint="manage it with mcp-linux-infra tokens new|list|revoke",
                        exit_code=EXIT_CONFIG) from None
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise UserError(f"tokens file {path}: a name is used twice",
                        exit_code=EXIT_CONFIG)
    return specs


def write_json(path: Path, data: object) -> None:
    """`path` replaced at once by `data` (mode 0600): a reader sees the old file or the new.
    Run as root, the new file keeps the old one's owner (the service user that reads it)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            old = os.stat(path)
        except FileNotFoundError:
            old = None
        if old is not None and os.geteuid() == 0:
            os.fchown(fd, old.st_uid, old.st_gid)
        with os.fdopen(fd, "w") as file:
            json.dump(data, file, indent=1)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def _locked(path: Path):
    """One `tokens` command at a time changes the file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _save(path: Path, specs: list[TokenSpec]) -> None:
    write_json(path, [s.model_dump(mode="json") for s in specs])


def add_token(path: Path, name: str, scopes: list[str], groups: list[str] | None,
              token: str) -> TokenSpec:
    with _locked(path):
        specs = read_tokens(path) or []
        if any(s.name == name for s in specs):
            raise UserError(f"a token named {name!r} exists already",
                            hint=f"revoke it first: mcp-linux-infra tokens revoke {name}")
        spec = TokenSpec(name=name, sha256=token_hash(token), scopes=tuple(scopes),
                         groups=tuple(groups) if groups else None,
                         created=datetime.now(UTC).replace(microsecond=0))
        _save(path, [*specs, spec])
        return spec


def revoke_token(path: Path, name: str) -> None:
    with _locked(path):
        specs = read_tokens(path) or []
        kept = [s for s in specs if s.name != name]
        if len(kept) == len(specs):
            raise UserError(f"no token named {name!r} in {path}",
                            hint="mcp-linux-infra tokens list shows them", exit_code=EXIT_USAGE)
        _save(path, kept)


_UNREAD = object()


class LiveTokens:
    """The tokens file as it is now: read again when it changed (another inode, size or
    mtime: `tokens` replaces it atomically). A file that became unreadable or invalid
    accepts no token until it is fixed (refuse by default), and says so once."""

    def __init__(self, path: Path, report=None):
        self.path = path
        self._report = report or (lambda message: None)
        self._lock = threading.Lock()
        self._seen: object = _UNREAD
        self._specs: list[TokenSpec] | None = None
        self.required = self.get() is not None  # a file at start: every request needs a token

    def _signature(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def get(self) -> list[TokenSpec] | None:
        with self._lock:
            seen = self._signature()
            if seen != self._seen:
                self._seen = seen
                try:
                    self._specs = read_tokens(self.path)
                except UserError as exc:
                    self._specs = []
                    self._report(f"{exc}; no token is accepted until it is fixed")
            return self._specs

    def specs(self) -> list[TokenSpec]:
        return self.get() or []

    def find(self, sha256: str) -> TokenSpec | None:
        """The token with this hash (compared in constant time, each one)."""
        match = None
        for spec in self.specs():
            if hmac.compare_digest(sha256, spec.sha256):
                match = spec
        return match


class LastUsed:
    """When each token (by hash: a new token under an old name starts afresh) was last
    used, in the state directory. A request only notes the time; a writer thread writes
    the file, atomically, at most once a minute per token, so no request waits on a disk."""

    def __init__(self, path: Path, report=None):
        self.path = path
        self._report = report or (lambda message: None)
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}
        self._written: dict[str, float] = {}
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="tokens-last-used",
                                        daemon=True)
        self._thread.start()

    def note(self, sha256: str, at: float | None = None) -> None:
        at = time.time() if at is None else at
        with self._lock:
            self._seen[sha256] = at
            if at - self._written.get(sha256, float("-inf")) >= FLUSH_EVERY:
                self._written[sha256] = at
                self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                seen = dict(self._seen)
                stop = self._stop
            if seen:
                try:
                    merged = read_last_used(self.path)
                    merged.update({h: iso(datetime.fromtimestamp(t, UTC)) for h, t in seen.items()})
                    write_json(self.path, merged)
                except OSError as exc:
                    self._report(f"cannot record when tokens were last used in {self.path}: "
                                 f"{exc.strerror or exc}")
            if stop:
                return

    def close(self) -> None:
        """Write what is noted, then stop."""
        with self._lock:
            self._stop = True
        self._wake.set()
        self._thread.join(timeout=10)


def read_last_used(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(data, dict) else {}
