"""Console logins and WebAuthn challenges.

A session id is 256 random bits in a cookie; the database (the approvals file, a table of its
own) keeps only its SHA-256, the operator, a CSRF token and the expiry, so a copy of the
database opens no session. Challenges live in memory: one use, short lives, bounded.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS console_sessions (
    id_sha256 TEXT PRIMARY KEY,
    operator TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
"""
CHALLENGE_SECONDS = 300
MAX_CHALLENGES = 10000


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    operator: str
    csrf: str
    expires_at: float

    def csrf_ok(self, token: str | None) -> bool:
        return isinstance(token, str) and hmac.compare_digest(token.encode(), self.csrf.encode())


class Sessions:
    def __init__(self, path: Path):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                   timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)

    def create(self, operator: str, ttl: float) -> tuple[str, Session]:
        session_id, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.time()
        with self._lock:
            self._db.execute("DELETE FROM console_sessions WHERE expires_at <= ?", (now,))
            self._db.execute("INSERT INTO console_sessions VALUES (?, ?, ?, ?, ?)",
                             (_hash(session_id), operator, csrf, now, now + ttl))
        return session_id, Session(operator, csrf, now + ttl)

    def get(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > 128:
            return None
        with self._lock:
            row = self._db.execute("SELECT operator, csrf, expires_at FROM console_sessions "
                                   "WHERE id_sha256 = ? AND expires_at > ?",
                                   (_hash(session_id), time.time())).fetchone()
        return None if row is None else Session(*row)

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM console_sessions WHERE id_sha256 = ?",
                             (_hash(session_id),))

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Challenges:
    """Challenges the console issued: each taken once, for its purpose and subject."""

    def __init__(self, seconds: float = CHALLENGE_SECONDS, clock=time.monotonic):
        self.seconds = seconds
        self.clock = clock
        self._issued: OrderedDict[bytes, tuple[str, str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self, purpose: str, subject: str = "") -> bytes:
        challenge = secrets.token_bytes(32)
        with self._lock:
            self._issued[challenge] = (purpose, subject, self.clock() + self.seconds)
            while len(self._issued) > MAX_CHALLENGES:
                self._issued.popitem(last=False)
        return challenge

    def take(self, challenge: bytes, purpose: str, subject: str = "") -> bool:
        with self._lock:
            found = self._issued.pop(challenge, None)
        return (found is not None and found[0] == purpose
                and hmac.compare_digest(found[1].encode(), subject.encode())
                and found[2] > self.clock())
