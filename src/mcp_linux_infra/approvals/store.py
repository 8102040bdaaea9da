"""Proposals and their life: SQLite (WAL) in the state directory, one row per proposal and
one `transitions` row per change of state, each change also one audit line.

    pending ─▶ approved ─▶ executing ─▶ succeeded | failed | already-satisfied
       │          │            │
       └──────────┴─▶ rejected | expired        executing ─▶ approved | expired
                                                (the target refused before using the nonce)
                                                executing ─▶ executing
                                                (an answer was lost; a reconciliation took over)

A change of state is one transaction that checks the state it leaves (and, where asked,
other columns), so two processes (the server, the operator CLI) can never both move the
same proposal, and a state is on disk (synchronous=FULL) before anything acts on it.
"""

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from mcp_linux_infra.approvals.document import build, canonical
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.settings import Settings

NEXT: dict[str | None, frozenset[str]] = {
    None: frozenset({"pending"}),
    "pending": frozenset({"approved", "rejected", "expired"}),
    "approved": frozenset({"executing", "rejected", "expired"}),
    # executing -> executing: an attempt ended without an answer, or a reconciliation took over
    "executing": frozenset({"executing", "succeeded", "failed", "already-satisfied", "approved",
                            "expired"}),
}
STATES = ("pending", "approved", "rejected", "expired", "executing", "succeeded", "failed",
          "already-satisfied")
_JSON_COLUMNS = ("params", "preview", "action_info", "result")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS proposals (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    state TEXT NOT NULL,
    host TEXT NOT NULL,
    action TEXT NOT NULL,
    params TEXT NOT NULL,
    rationale TEXT NOT NULL,
    preview TEXT,
    action_info TEXT,
    max_window INTEGER NOT NULL,
    proposed_by TEXT,
    trace TEXT,
    approver TEXT,
    nonce TEXT UNIQUE,
    not_before INTEGER,
    not_after INTEGER,
    signature TEXT,
    reason TEXT,
    executor TEXT,
    sent_at REAL,
    result TEXT,
    note TEXT
);
CREATE INDEX IF NOT EXISTS proposals_state ON proposals (state);
CREATE TABLE IF NOT EXISTS transitions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    proposal TEXT NOT NULL REFERENCES proposals (id),
    at REAL NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    actor TEXT NOT NULL,
    trace TEXT,
    note TEXT
);
CREATE INDEX IF NOT EXISTS transitions_proposal ON transitions (proposal);
"""


class UnknownProposal(UserError):
    pass


class StateConflict(UserError):
    """The proposal is not in a state that allows the change (or changed meanwhile)."""


@dataclass(frozen=True)
class Proposal:
    id: str
    created_at: float
    updated_at: float
    state: str
    host: str
    action: str
    params: dict[str, str]
    rationale: str
    preview: dict | None
    action_info: dict | None
    max_window: int
    proposed_by: str | None
    trace: str | None
    approver: str | None
    nonce: str | None
    not_before: int | None
    not_after: int | None
    signature: str | None
    reason: str | None
    executor: str | None
    sent_at: float | None
    result: dict | None
    note: str | None

    def document(self) -> dict[str, Any]:
        """The approval document this row stands for (what the operator signed, unless
        someone changed the row since: then the target refuses the signature)."""
        return build(self.id, self.host, self.action, self.params, self.nonce,
                     self.not_before, self.not_after, self.approver)

    def public(self) -> dict[str, Any]:
        """What tools and `approvals show --json` report: everything but the signature."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "signature"}
        data["signed"] = self.signature is not None
        return data


def _row(cursor: sqlite3.Cursor, row: tuple) -> dict[str, Any]:
    data = {d[0]: v for d, v in zip(cursor.description, row)}
    for column in _JSON_COLUMNS:
        if column in data and data[column] is not None:
            data[column] = json.loads(data[column])
    return data


class ApprovalStore:
    def __init__(self, path: Path, audit: Audit | None = None,
                 pending_ttl: float = 86400.0):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path
        self.audit = audit
        self.pending_ttl = pending_ttl
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                   timeout=30)
        self._db.row_factory = _row
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[str, Proposal], None]] = []
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)

    # -- reading --------------------------------------------------------------------------
    def get(self, proposal_id: str) -> Proposal:
        with self._lock:
            row = self._db.execute("SELECT * FROM proposals WHERE id = ?",
                                   (proposal_id,)).fetchone()
        if row is None:
            raise UnknownProposal(f"no proposal {proposal_id!r}",
                                  hint="list_proposals (or `approvals list`) shows them")
        return Proposal(**row)

    def find(self, state: str | None = None, host: str | None = None,
             limit: int = 100) -> list[Proposal]:
        """Newest first."""
        query, args = "SELECT * FROM proposals WHERE 1 = 1", []
        if state:
            query, args = query + " AND state = ?", args + [state]
        if host:
            query, args = query + " AND host = ?", args + [host]
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created_at DESC, id LIMIT ?",
                                    (*args, limit)).fetchall()
        return [Proposal(**r) for r in rows]

    def transitions(self, proposal_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return self._db.execute(
                "SELECT at, from_state, to_state, actor, trace, note FROM transitions "
                "WHERE proposal = ? ORDER BY seq", (proposal_id,)).fetchall()

    # -- changing ---------------------------------------------------------------------------
    def create(self, host: str, action: str, params: dict[str, str], rationale: str,
               max_window: int, preview: dict | None = None, action_info: dict | None = None,
               proposed_by: str | None = None, trace: str | None = None) -> Proposal:
        now = time.time()
        with self._lock:
            for _ in range(5):
                proposal_id = "p" + secrets.token_hex(4)
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.execute(
                        "INSERT INTO proposals (id, created_at, updated_at, state, host, "
                        "action, params, rationale, preview, action_info, max_window, "
                        "proposed_by, trace) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, "
                        "?, ?)",
                        (proposal_id, now, now, host, action, canonical(params), rationale,
                         None if preview is None else json.dumps(preview),
                         None if action_info is None else json.dumps(action_info),
                         max_window, proposed_by, trace))
                    self._log(proposal_id, now, None, "pending", proposed_by or "model", trace,
                              None)
                    self._db.execute("COMMIT")
                    break
                except sqlite3.IntegrityError:  # the id was taken: draw another
                    self._db.execute("ROLLBACK")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            else:
                raise RuntimeError("could not pick a free proposal id")
        self._audit(proposal_id, host, action, params, None, "pending", proposed_by or "model",
                    trace, None)
        return self._publish("created", self.get(proposal_id))

    def transition(self, proposal_id: str, to: str, actor: str, *,
                   expect: dict[str, Any] | None = None, note: str | None = None,
                   trace: str | None = None, **values: Any) -> Proposal:
        """Move to `to` if that is allowed from the current state and every column in
        `expect` still has the given value; set `values` (and `note`) in the same commit."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT * FROM proposals WHERE id = ?",
                                       (proposal_id,)).fetchone()
                if row is None:
                    raise UnknownProposal(f"no proposal {proposal_id!r}")
                current = row["state"]
                if to not in NEXT.get(current, ()):
                    raise StateConflict(f"proposal {proposal_id} is {current}; it cannot "
                                        f"become {to}")
                for column, value in (expect or {}).items():
                    if row[column] != value:
                        raise StateConflict(f"proposal {proposal_id} changed meanwhile "
                                            f"({column}); nothing was done")
                values = {**values, "note": note} if note is not None else values
                assignments = {k: json.dumps(v) if k in _JSON_COLUMNS and v is not None
                               else v for k, v in values.items()}
                columns = "".join(f", {k} = ?" for k in assignments)
                self._db.execute(f"UPDATE proposals SET state = ?, updated_at = ?{columns} "
                                 "WHERE id = ?", (to, now, *assignments.values(), proposal_id))
                self._log(proposal_id, now, current, to, actor, trace, note)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self._audit(proposal_id, row["host"], row["action"], row["params"], current, to, actor,
                    trace, note)
        return self._publish(to, self.get(proposal_id))

    def expire_due(self, now: float | None = None) -> list[str]:
        """Pending proposals older than pending_ttl, and approvals past their window,
        become expired (executing ones are left to the execution that owns them)."""
        now = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute(
                "SELECT id, state FROM proposals WHERE (state = 'pending' AND created_at < ?) "
                "OR (state = 'approved' AND not_after < ?)",
                (now - self.pending_ttl, int(now))).fetchall()
        expired = []
        for row in rows:
            why = ("not approved within the proposal lifetime" if row["state"] == "pending"
                   else "the approval's window closed before it was executed")
            try:
                self.transition(row["id"], "expired", "clock", expect={"state": row["state"]},
                                note=why)
            except StateConflict:
                continue  # moved by someone else meanwhile
            expired.append(row["id"])
        return expired

    def subscribe(self, callback: Callable[[str, Proposal], None]) -> None:
        """`callback(event, proposal)` after each committed change ("created", or the state
        entered): how notifications learn of changes. It runs in the changing thread, so it
        must only queue; its exceptions are audited, never raised to the change's caller."""
        self._subscribers.append(callback)

    def _publish(self, event: str, proposal: Proposal) -> Proposal:
        for callback in list(self._subscribers):
            try:
                callback(event, proposal)
            except Exception as exc:
                if self.audit is not None:
                    self.audit.error("subscriber_failed", notification=event,
                                     proposal=proposal.id,
                                     error=f"{type(exc).__name__}: {exc}")
        return proposal

    def _log(self, proposal_id: str, at: float, old: str | None, new: str, actor: str,
             trace: str | None, note: str | None) -> None:
        self._db.execute("INSERT INTO transitions (proposal, at, from_state, to_state, actor, "
                         "trace, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (proposal_id, at, old, new, actor, trace, note))

    def _audit(self, proposal_id: str, host: str, action: str, params: Any, old: str | None,
               new: str, actor: str, trace: str | None, note: str | None) -> None:
        if self.audit is not None:
            self.audit.info("proposal_transition", proposal=proposal_id, host=host,
                            action=action, params=params, from_state=old, to_state=new,
                            actor=actor, trace=trace, note=note)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_approvals(settings: Settings, audit: Audit) -> ApprovalStore:
    """The one approval store of this state directory (the server's and the CLI's)."""
    return ApprovalStore(settings.state_dir / "approvals.sqlite3", audit,
                         pending_ttl=settings.proposal_ttl)
