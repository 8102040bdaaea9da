"""Refused commands, remembered so an operator can see what the model keeps needing.

SQLite in WAL mode in the state directory: tool calls record from worker threads while
the learning tools read. Nothing here ever changes a policy; suggestions are text an
operator may review and add to the inventory.
"""

import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    host TEXT NOT NULL,
    command TEXT NOT NULL,
    name TEXT,
    reason TEXT NOT NULL,
    rule TEXT,
    detail TEXT,
    trace TEXT
);
CREATE INDEX IF NOT EXISTS refusals_command ON refusals (command);
"""


def iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat(
        timespec="seconds")


@dataclass(frozen=True)
class RefusedCommand:
    command: str
    name: str | None
    count: int
    hosts: list[str]
    reasons: list[str]
    first_seen: float
    last_seen: float
    detail: str


class LearningStore:
    def __init__(self, path: Path):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)

    def record(self, host: str, command: str, name: str | None, reason: str, rule: str | None,
               detail: str, trace: str | None, at: float | None = None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO refusals (at, host, command, name, reason, rule, detail, trace) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (at or time.time(), host, command, name, reason, rule, detail, trace))

    def refused(self, min_count: int = 1, min_age_hours: float = 0.0) -> list[RefusedCommand]:
        """Distinct refused command lines seen at least `min_count` times, the first time at
        least `min_age_hours` ago; most frequent first."""
        cutoff = time.time() - min_age_hours * 3600
        with self._lock:
            rows = self._db.execute(
                "SELECT command, MAX(name), COUNT(*), GROUP_CONCAT(DISTINCT host), "
                "GROUP_CONCAT(DISTINCT reason), MIN(at), MAX(at), MAX(detail) FROM refusals "
                "GROUP BY command HAVING COUNT(*) >= ? AND MIN(at) <= ? "
                "ORDER BY COUNT(*) DESC, command", (min_count, cutoff)).fetchall()
        return [RefusedCommand(command=r[0], name=r[1], count=r[2],
                               hosts=sorted(r[3].split(",")), reasons=sorted(r[4].split(",")),
                               first_seen=r[5], last_seen=r[6], detail=r[7] or "")
                for r in rows]

    def stats(self) -> dict:
        with self._lock:
            total, distinct, first, last = self._db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT command), MIN(at), MAX(at) FROM refusals"
            ).fetchone()
            by_reason = dict(self._db.execute(
                "SELECT reason, COUNT(*) FROM refusals GROUP BY reason ORDER BY 2 DESC"))
            by_host = dict(self._db.execute(
                "SELECT host, COUNT(*) FROM refusals GROUP BY host ORDER BY 2 DESC"))
            by_name = dict(self._db.execute(
                "SELECT COALESCE(name, '?'), COUNT(*) FROM refusals GROUP BY 1 "
                "ORDER BY 2 DESC LIMIT 20"))
        return {"refusals": total, "distinct_commands": distinct, "first_seen": iso(first),
                "last_seen": iso(last), "by_reason": by_reason, "by_host": by_host,
                "top_commands": by_name}

    def close(self) -> None:
        with self._lock:
            self._db.close()
