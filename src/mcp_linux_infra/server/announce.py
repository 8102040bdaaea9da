"""The notifier's one source of events: the approval store's durable `transitions` table,
followed by seq. So a change made by another process (the operator CLI approving,
rejecting or expiring, in its own process) is announced like the server's own, and each
transition is announced once, not once per server: every server on the same store (state
directory, or PostgreSQL database) claims the rows it announces by moving one shared cursor,
in one transaction under the store's write lock (so no row is committed behind the cursor).

The store's in-process callback (`ApprovalStore.subscribe`) only wakes the announcer, so the
server's own changes go out at once; others' within `webhook_poll_interval`. A row found
older than the proposal lifetime (a server that was down long, webhooks configured only
now) is not announced: one audit line counts them. Rows not yet claimed when the server
stops are announced by the next server that starts on this state directory.

The cursor lives in the store's database (table `notify_cursor`, made here, so that the
store's schema stays the store's), read with the store's column names: seq, proposal, at,
event, to_state, note. Rows whose event is not one notifications know (a document prepared,
approvals dropped when its window closed) move the cursor and are not announced.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from mcp_linux_infra.approvals.store import ApprovalStore, Proposal
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.notify.events import EVENTS

BATCH = 100
_CURSOR = """
CREATE TABLE IF NOT EXISTS notify_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO notify_cursor (id, seq)
    SELECT 1, COALESCE(MAX(seq), 0) FROM transitions WHERE true ON CONFLICT DO NOTHING
"""


class Announcer:
    """Hands each new transitions row to `notify(event, proposal, at)`, in seq order, once
    across every server sharing the database. `notify` must only queue (Notifier.notify
    does)."""

    def __init__(self, store: ApprovalStore, notify: Callable[[str, Proposal, float], None],
                 audit: Audit, interval: float, horizon: float,
                 clock: Callable[[], float] = time.time):
        self._store = store
        self._notify = notify
        self._audit = audit
        self._interval = interval
        self._horizon = horizon
        self._clock = clock
        self._db = store.db
        with self._db.transaction():
            self._db.script(_CURSOR)
        self._wake = threading.Event()
        self._stop = threading.Event()
        store.subscribe(lambda event, proposal: self._wake.set())
        self._thread = threading.Thread(target=self._run, name="announcer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                while not self._stop.is_set() and self._claim_and_announce():
                    pass
            except Exception as exc:  # the next round tries again: nothing was claimed
                self._audit.error("announce_failed", error=f"{type(exc).__name__}: {exc}")

    def _claim(self) -> list[tuple]:
        """The next rows after the shared cursor, the cursor moved past them: ours alone."""
        if not self._db.all("SELECT 1 AS found FROM transitions WHERE seq > "
                            "(SELECT seq FROM notify_cursor) LIMIT 1"):
            return []  # idle: no write lock taken, so an idle server never holds up the CLI
        with self._db.transaction():
            cursor = self._db.one("SELECT seq FROM notify_cursor")["seq"]
            rows = self._db.all(
                "SELECT seq, proposal, at, event, to_state, note FROM transitions "
                "WHERE seq > ? ORDER BY seq LIMIT ?", (cursor, BATCH))
            if rows:
                self._db.run("UPDATE notify_cursor SET seq = ?", (rows[-1]["seq"],))
        return [tuple(row.values()) for row in rows]

    def _claim_and_announce(self) -> bool:
        """One batch; False once there was nothing new."""
        rows = self._claim()
        stale = self._clock() - self._horizon
        skipped = 0
        for seq, proposal_id, at, event, to_state, note in rows:
            if event not in EVENTS:
                continue
            if at < stale:
                skipped += 1
                continue
            try:
                self._notify(event, self._as_of(self._store.get(proposal_id), to_state, note), at)
            except Exception as exc:  # claimed: announce the rest, say what was lost
                self._audit.error("announce_failed", seq=seq, proposal=proposal_id,
                                  error=f"{type(exc).__name__}: {exc}")
        if skipped:
            self._audit.warning("announce_skipped_stale", count=skipped,
                                older_than_s=self._horizon)
        return bool(rows)

    @staticmethod
    def _as_of(proposal: Proposal, state: str, note: str | None) -> Proposal:
        """The proposal as now, with the state and note of the transition announced (it may
        have moved on since)."""
        return replace(proposal, state=state, note=note)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        """Stop; rows not claimed yet stay for the next server."""
        self._stop.set()
        self._wake.set()
        self._thread.join()
