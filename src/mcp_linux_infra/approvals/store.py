"""Proposals and their life, in the store's database (database.py: an SQLite file in the state
directory, or the PostgreSQL database several servers share): one row per proposal, one
row per operator's approval, and one `transitions` row per change (of state, or an approval
added, a document prepared, approvals dropped), each also one audit line.

    pending ─▶ approved ─▶ executing ─▶ succeeded | failed | already-satisfied
       │          │            │
       └──────────┴─▶ rejected | expired        executing ─▶ approved | expired
                                                (the target refused before using the nonce)
                                                executing ─▶ executing
                                                (an answer was lost; a reconciliation took over)

A pending proposal gets its approval document once (`prepare_document`): every approver signs
those same bytes, and `add_approval` stores each operator's signature after checking it
against the operator's registered key; the proposal is approved when `required` distinct
operators signed. A new document (new nonce and window) is prepared only once the window of
the old one closed, and that drops the approvals of the old one.

A change is one transaction, under the store's write lock (held by the database, so across
processes), that checks the state it leaves (and, where asked, other columns), so two
processes (servers, the operator CLI, the console) can never both move the same proposal, and
a change is committed (on disk) before anything acts on it.
"""

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from mcp_linux_infra.approvals import schema
from mcp_linux_infra.approvals.document import build_v2, canonical, new_nonce
from mcp_linux_infra.approvals.verify import ApprovalRefused, verify
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.database import Database, SQLite, only_hosts, open_database
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
METHOD = re.compile(r"[a-z][a-z0-9-]{0,31}\Z")
__all__ = ["NEXT", "STATES", "ApprovalRefused", "ApprovalStore", "Operators", "Proposal",
           "StateConflict", "UnknownProposal", "open_approvals"]  # ApprovalRefused: verify's


class Operators(Protocol):
    """What the store asks of the operators registry: `get(name)` -> an operator with
    `public_key` ("TYPE BASE64") and `revoked_at`, or a UserError for an unknown name."""

    def get(self, name: str) -> Any: ...


class UnknownProposal(UserError):
    @classmethod
    def of(cls, proposal_id: str) -> "UnknownProposal":
        return cls(f"no proposal {proposal_id!r}",
                   hint="list_proposals (or `approvals list`) shows them")


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
    required: int
    proposed_by: str | None
    trace: str | None
    document_text: str | None
    nonce: str | None
    not_before: int | None
    not_after: int | None
    reason: str | None
    executor: str | None
    sent_at: float | None
    result: dict | None
    note: str | None
    approvals: list[dict[str, Any]]  # {principal, method, at, key_type}, oldest first

    @property
    def principals(self) -> list[str]:
        return [a["principal"] for a in self.approvals]

    def count(self) -> str:
        """"N of M approvals", as the target says it."""
        return f"{len(self.approvals)} of {self.required} approvals"

    def public(self) -> dict[str, Any]:
        """What tools and `approvals show --json` report (no signature is ever in a
        Proposal; the document's text is the console's and the CLI's to show)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "document_text"}
        data["approvals_count"] = self.count()
        return data


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its JSON columns parsed."""
    data = dict(row)
    for column in _JSON_COLUMNS:
        if column in data and data[column] is not None:
            data[column] = json.loads(data[column])
    return data


def _window_closed(not_after: int | None, now: float) -> bool:
    """The target's own test for `expired`: past not_after by a whole second."""
    return not_after is not None and int(now) > not_after


class ApprovalStore:
    def __init__(self, db: Database | Path, audit: Audit | None = None,
                 pending_ttl: float = 86400.0, operators: Operators | None = None):
        """`db`: the store's database (a path: an SQLite file). `operators`: the operators
        registry (mcp_linux_infra.operators, a room above this one, so it is handed in by
        whoever adds approvals: the CLI's entry point, the console); without it,
        add_approval refuses every principal as unknown."""
        self.db = db if isinstance(db, Database) else SQLite(db, "approvals")
        self.audit = audit
        self.pending_ttl = pending_ttl
        self._subscribers: list[Callable[[str, Proposal], None]] = []
        self._audits: list[tuple] = []
        schema.ensure(self.db)
        self.operators = operators

    # -- reading --------------------------------------------------------------------------
    def get(self, proposal_id: str) -> Proposal:
        row = self.db.one("SELECT * FROM proposals WHERE id = ?", (proposal_id,))
        if row is None:
            raise UnknownProposal.of(proposal_id)
        return self._proposal(_decoded(row))

    def find(self, state: str | None = None, host: str | None = None,
             limit: int = 100, hosts: list[str] | None = None) -> list[Proposal]:
        """Newest first; only on `hosts` when given."""
        query, args = "SELECT * FROM proposals WHERE 1 = 1", []
        if state:
            query, args = query + " AND state = ?", args + [state]
        if host:
            query, args = query + " AND host = ?", args + [host]
        if hosts is not None:
            where, more = only_hosts(hosts)
            query, args = f"{query} AND {where}", args + list(more)
        rows = self.db.all(query + " ORDER BY created_at DESC, id LIMIT ?", (*args, limit))
        return [self._proposal(_decoded(r)) for r in rows]

    def count_by_state(self) -> dict[str, int]:
        """How many proposals are in each state (for the metrics scrape: one GROUP BY)."""
        rows = self.db.all("SELECT state, COUNT(*) AS n FROM proposals GROUP BY state")
        return {row["state"]: row["n"] for row in rows}

    def history(self, proposal_id: str) -> list[dict[str, Any]]:
        """Every change, oldest first: {at, event, from_state, to_state, actor, trace, note};
        `event` is "created", the state entered, or approval_added, document_prepared,
        approvals_dropped."""
        return self.db.all(
            "SELECT at, event, from_state, to_state, actor, trace, note FROM transitions "
            "WHERE proposal = ? ORDER BY seq", (proposal_id,))

    def signatures(self, proposal_id: str) -> list[str]:
        """The stored signatures over the proposal's document, oldest first (what the
        executor sends; never part of a Proposal, so never in a tool's answer)."""
        return [r["signature"] for r in self.db.all(
            "SELECT signature FROM approvals WHERE proposal = ? ORDER BY at, principal",
            (proposal_id,))]

    def _proposal(self, row: dict[str, Any]) -> Proposal:
        """The (decoded) row with its approvals."""
        approvals = self.db.all(
            "SELECT principal, method, at, key_type FROM approvals WHERE proposal = ? "
            "ORDER BY at, principal", (row["id"],))
        return Proposal(**row, approvals=approvals)

    # -- changing ---------------------------------------------------------------------------
    def create(self, host: str, action: str, params: dict[str, str], rationale: str,
               max_window: int, preview: dict | None = None, action_info: dict | None = None,
               proposed_by: str | None = None, trace: str | None = None,
               required: int = 1) -> Proposal:
        """A pending proposal; `required`: distinct operators who must approve it (the
        host's rule as its catalog said at propose time; the target enforces its own)."""
        if type(required) is not int or not 1 <= required <= 9:
            raise ValueError("required approvals must be 1..9")
        now = time.time()
        for _ in range(5):
            proposal_id = "p" + secrets.token_hex(4)
            try:
                with self._write():
                    self.db.run(
                        "INSERT INTO proposals (id, created_at, updated_at, state, host, "
                        "action, params, rationale, preview, action_info, max_window, "
                        "required, proposed_by, trace) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, "
                        "?, ?, ?, ?, ?, ?)",
                        (proposal_id, now, now, host, action, canonical(params), rationale,
                         None if preview is None else json.dumps(preview),
                         None if action_info is None else json.dumps(action_info),
                         max_window, required, proposed_by, trace))
                    self._log({"id": proposal_id, "host": host, "action": action,
                               "params": params}, now, "created", "pending",
                              proposed_by or "model", trace, None)
                break
            except self.db.IntegrityError:  # the id was taken: draw another
                continue
        else:
            raise RuntimeError("could not pick a free proposal id")
        return self._publish("created", self.get(proposal_id))

    def transition(self, proposal_id: str, to: str, actor: str, *,
                   expect: dict[str, Any] | None = None, note: str | None = None,
                   trace: str | None = None, **values: Any) -> Proposal:
        """Move to `to` if that is allowed from the current state and every column in
        `expect` still has the given value; set `values` (and `note`) in the same commit."""
        now = time.time()
        with self._write() as row_of:
            row = row_of(proposal_id)
            current = row["state"]
            if to not in NEXT.get(current, ()):
                raise StateConflict(f"proposal {proposal_id} is {current}; it cannot "
                                    f"become {to}")
            for column, value in (expect or {}).items():
                if row[column] != value:
                    raise StateConflict(f"proposal {proposal_id} changed meanwhile "
                                        f"({column}); nothing was done")
            self._move(row, to, actor, now, trace, note, values)
        return self._publish(to, self.get(proposal_id))

    def prepare_document(self, proposal_id: str, ttl: int, now: float | None = None) -> Proposal:
        """The pending proposal with its approval document: the one already prepared while
        its window is open (every approver signs the same bytes), else a new one valid from
        now for `ttl` seconds (at most the host's max_window), with a new nonce; replacing a
        document whose window closed drops the approvals it had (audited)."""
        if int(ttl) < 1:
            raise ValueError("an approval's window lasts at least one second")
        now = time.time() if now is None else now
        with self._write() as row_of:
            row = row_of(proposal_id)
            if row["state"] != "pending":
                raise ApprovalRefused("not_pending", f"proposal {proposal_id} is "
                                      f"{row['state']}; only a pending proposal is approved")
            if row["document_text"] is not None and not _window_closed(row["not_after"], now):
                return self._proposal(row)
            start, nonce = int(now), new_nonce()
            end = start + min(int(ttl), row["max_window"])
            document = canonical(build_v2(
                row["id"], [{"host": row["host"], "action": row["action"],
                             "params": row["params"], "nonce": nonce}],
                start, end, row["required"]))
            dropped = [a["principal"] for a in self.db.all(
                "SELECT principal FROM approvals WHERE proposal = ? ORDER BY at, principal",
                (proposal_id,))]
            self.db.run("DELETE FROM approvals WHERE proposal = ?", (proposal_id,))
            self.db.run(
                "UPDATE proposals SET document_text = ?, nonce = ?, not_before = ?, "
                "not_after = ?, updated_at = ? WHERE id = ?",
                (document, nonce, start, end, now, proposal_id))
            if dropped:
                self._log(row, now, "approvals_dropped", "pending", "clock", None,
                          "the approval document's window closed; dropped the approvals of "
                          + ", ".join(dropped))
            self._log(row, now, "document_prepared", "pending", "store", None,
                      f"valid {start} .. {end} (Unix time)")
        return self.get(proposal_id)

    def add_approval(self, proposal_id: str, principal: str, signature: str,
                     method: str, now: float | None = None,
                     document: str | None = None) -> Proposal:
        """Store `principal`'s signature over the proposal's prepared document, after
        checking it with ssh-keygen against the operator's registered key; the proposal
        becomes approved once `required` distinct operators signed. `document`: the text
        the approver was shown and signed, if the caller knows it (a replaced document is
        then refused as document_changed rather than as a bad signature). Refusals:
        ApprovalRefused(unknown_operator | operator_revoked | already_approved | not_pending
        | document_changed | bad_signature)."""
        if not METHOD.match(method):
            raise ValueError("method must be a short lowercase word")
        now = time.time() if now is None else now
        key_line = self.operator_key(principal)
        seen = self.get(proposal_id)
        self._check_open(seen, principal, now)
        if document is not None and document != seen.document_text:
            raise ApprovalRefused("document_changed", f"proposal {proposal_id}'s approval "
                                  "document was replaced (its window closed) after it was "
                                  "shown; nothing was stored: approve the new one")
        key_type = verify(seen.document_text, signature, principal, key_line).key_type
        with self._write() as row_of:
            row = row_of(proposal_id)
            self._check_open(self._proposal(row), principal, now)
            if row["document_text"] != seen.document_text:
                raise ApprovalRefused("document_changed", "the approval document changed while "
                                      "it was being signed; sign the new one")
            self.db.run(
                "INSERT INTO approvals (proposal, principal, method, key_type, signature, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (proposal_id, principal, method, key_type, signature, now))
            have = self.db.one("SELECT COUNT(*) AS n FROM approvals WHERE proposal = ?",
                               (proposal_id,))["n"]
            count = f"{have} of {row['required']} approvals"
            actor = f"operator:{principal}"
            self._log(row, now, "approval_added", "pending", actor, None,
                      f"{principal} ({method}, {key_type}): {count}")
            approved = have >= row["required"]
            if approved:
                self._move(row, "approved", actor, now, None, f"approved: {count}", {})
        proposal = self._publish("approval_added", self.get(proposal_id))
        return self._publish("approved", proposal) if approved else proposal

    def reject(self, proposal_id: str, principal: str, reason: str) -> Proposal:
        """Refuse a pending (or approved, unused) proposal, with the operator's reason."""
        return self.transition(proposal_id, "rejected", f"operator:{principal}", reason=reason,
                               note=f"rejected by {principal}")

    def expire_due(self, now: float | None = None) -> list[str]:
        """Pending proposals older than pending_ttl, and approvals past their window,
        become expired (executing ones are left to the execution that owns them)."""
        now = time.time() if now is None else now
        rows = self.db.all(
            "SELECT id, state FROM proposals WHERE (state = 'pending' AND created_at < ?) "
            "OR (state = 'approved' AND not_after < ?)", (now - self.pending_ttl, int(now)))
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
        """`callback(event, proposal)` after each committed change ("created",
        "approval_added", or the state entered): how notifications learn of changes. It
        runs in the changing thread, so it must only queue; its exceptions are audited,
        never raised to the change's caller."""
        self._subscribers.append(callback)

    # -- inside -----------------------------------------------------------------------------
    def operator_key(self, principal: str) -> str:
        """The registered key line of a current operator; ApprovalRefused(unknown_operator
        | operator_revoked) otherwise."""
        try:
            if self.operators is None:
                raise UserError("this store was opened without the operators registry")
            operator = self.operators.get(principal)
        except UserError:  # the registry's refusal (RegistryRefused: unknown_operator)
            raise ApprovalRefused("unknown_operator", f"{principal!r} is not a registered "
                                  "operator", hint="mcp-linux-infra operators list") from None
        if operator.revoked_at is not None:
            raise ApprovalRefused("operator_revoked", f"{principal}'s key was revoked")
        return operator.public_key

    @staticmethod
    def _check_open(p: Proposal, principal: str, now: float) -> None:
        if principal in p.principals:
            raise ApprovalRefused("already_approved", f"{principal} already approved "
                                  f"{p.id} ({p.count()}); another operator must add the next")
        if p.state != "pending":
            raise ApprovalRefused("not_pending", f"proposal {p.id} is {p.state}; only a pending "
                                  "proposal is approved")
        if p.document_text is None or _window_closed(p.not_after, now):
            raise ApprovalRefused("document_changed", f"proposal {p.id} has no open approval "
                                  "document; prepare (show) it again and sign the new one")

    @contextmanager
    def _write(self) -> Iterator[Callable[[str], dict[str, Any]]]:
        """One write transaction, under the store's write lock, handing out `row_of(id)`;
        the audit lines of its changes are written once it committed."""
        audits: list[tuple] = []
        with self.db.transaction():
            self._audits = []
            try:
                yield self._row_of
            finally:
                audits, self._audits = self._audits, []
        for audit in audits:
            self._emit(*audit)

    def _row_of(self, proposal_id: str) -> dict[str, Any]:
        row = self.db.one("SELECT * FROM proposals WHERE id = ?" + self.db.FOR_UPDATE,
                          (proposal_id,))
        if row is None:
            raise UnknownProposal(f"no proposal {proposal_id!r}")
        return _decoded(row)

    def _move(self, row: dict[str, Any], to: str, actor: str, now: float, trace: str | None,
              note: str | None, values: dict[str, Any]) -> None:
        """Inside a transaction: set the state and `values`, record it."""
        values = {**values, "note": note} if note is not None else values
        assignments = {k: json.dumps(v) if k in _JSON_COLUMNS and v is not None else v
                       for k, v in values.items()}
        columns = "".join(f", {k} = ?" for k in assignments)
        self.db.run(f"UPDATE proposals SET state = ?, updated_at = ?{columns} WHERE id = ?",
                    (to, now, *assignments.values(), row["id"]))
        self._log(row, now, to, to, actor, trace, note)

    def _publish(self, event: str, proposal: Proposal) -> Proposal:
        for callback in list(self._subscribers):
            try:
                callback(event, proposal)
            except Exception as exc:  # noqa: BLE001 - a subscriber never fails a change
                if self.audit is not None:
                    self.audit.error("subscriber_failed", notification=event,
                                     proposal=proposal.id, error=f"{type(exc).__name__}: {exc}")
        return proposal

    def _log(self, row: dict[str, Any], at: float, event: str, new: str, actor: str,
             trace: str | None, note: str | None) -> None:
        """Inside a transaction: one transitions row, and its audit line once committed (a
        change of state is audited as `proposal_transition`, anything else by its name)."""
        old = None if event == "created" else row["state"]
        self.db.run("INSERT INTO transitions (proposal, at, event, from_state, to_state, "
                    "actor, trace, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (row["id"], at, event, old, new, actor, trace, note))
        self._audits.append(("proposal_transition" if event in STATES or event == "created"
                             else event, row["id"], row["host"], row["action"], row["params"],
                             old, new, actor, trace, note))

    def _emit(self, event: str, proposal_id: str, host: str, action: str, params: Any,
              old: str | None, new: str, actor: str, trace: str | None,
              note: str | None) -> None:
        if self.audit is not None:
            self.audit.info(event, proposal=proposal_id, host=host, action=action,
                            params=params, from_state=old, to_state=new, actor=actor,
                            trace=trace, note=note)

    def close(self) -> None:
        self.db.close()


def open_approvals(settings: Settings, audit: Audit,
                   operators: Operators | None = None) -> ApprovalStore:
    """The one approval store of these settings (the servers', the CLI's and the
    console's): PostgreSQL's if database_url is set, else the state directory's file;
    `operators`: the registry of the same database, where approvals are added."""
    return ApprovalStore(open_database(settings.database_url, settings.state_dir,
                                       "approvals.sqlite3", "approvals"), audit,
                         pending_ttl=settings.proposal_ttl, operators=operators)
