"""The approval store's tables (schema 2), and the one-time migration of a schema-1 file.

Schema 2: a proposal holds the one v2 document all its approvers sign (`document_text`,
with its step's nonce and window in columns) and how many distinct operators must sign it
(`required`); `approvals` holds one signature per operator for that document;
`transitions` records every change, of state or not (`event`), by sequence number (what
notifications follow, server/announce.py).

Schema 1 (PRAGMA user_version 0) had one approver and one v1 signature per proposal. It is
migrated in place, in one transaction: rows are kept; a signed one gets its v1 document as
`document_text` and its signature as its one approval, so an approval signed before the
upgrade still executes (the target accepts v1 for one more release).
"""

import json
import sqlite3
from typing import Any

from mcp_linux_infra.approvals.document import build_v1, canonical
from mcp_linux_infra.approvals.verify import key_type

VERSION = 2

TABLES = (
    """CREATE TABLE IF NOT EXISTS proposals (
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
    required INTEGER NOT NULL,
    proposed_by TEXT,
    trace TEXT,
    document_text TEXT,
    nonce TEXT UNIQUE,
    not_before INTEGER,
    not_after INTEGER,
    reason TEXT,
    executor TEXT,
    sent_at REAL,
    result TEXT,
    note TEXT)""",
    "CREATE INDEX IF NOT EXISTS proposals_state ON proposals (state)",
    """CREATE TABLE IF NOT EXISTS approvals (
    proposal TEXT NOT NULL REFERENCES proposals (id),
    principal TEXT NOT NULL,
    method TEXT NOT NULL,
    key_type TEXT NOT NULL,
    signature TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (proposal, principal))""",
    """CREATE TABLE IF NOT EXISTS transitions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    proposal TEXT NOT NULL REFERENCES proposals (id),
    at REAL NOT NULL,
    event TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    actor TEXT NOT NULL,
    trace TEXT,
    note TEXT)""",
    "CREATE INDEX IF NOT EXISTS transitions_proposal ON transitions (proposal)",
)
# schema 1's columns that schema 2 keeps as they are
_KEPT = ("id", "created_at", "updated_at", "state", "host", "action", "params", "rationale",
         "preview", "action_info", "max_window", "proposed_by", "trace", "nonce", "not_before",
         "not_after", "reason", "executor", "sent_at", "result", "note")


def ensure(connection: sqlite3.Connection) -> None:
    """Create the tables, or migrate a schema-1 file; `connection` in autocommit mode."""
    db = connection.cursor()
    db.row_factory = None  # plain tuples, whatever the connection's rows are
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and _has_table(db, "proposals"):
            _migrate_1(db)
        elif version not in (0, VERSION):
            raise RuntimeError(f"approval store schema {version} is newer than this program "
                               f"({VERSION})")
        for statement in TABLES:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _has_table(db: sqlite3.Cursor, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                      (name,)).fetchone() is not None


def _rows(db: sqlite3.Cursor, query: str) -> list[dict[str, Any]]:
    db.execute(query)
    names = [d[0] for d in db.description]
    return [dict(zip(names, row)) for row in db.fetchall()]


def _migrate_1(db: sqlite3.Cursor) -> None:
    """Schema 1 -> 2 inside the caller's transaction (the old tables are renamed, copied
    into the new ones, then dropped; foreign keys are checked before the commit)."""
    for index in ("proposals_state", "transitions_proposal"):
        db.execute(f"DROP INDEX IF EXISTS {index}")
    db.execute("PRAGMA defer_foreign_keys = ON")
    db.execute("ALTER TABLE proposals RENAME TO proposals_v1")
    db.execute("ALTER TABLE transitions RENAME TO transitions_v1")
    for statement in TABLES:
        db.execute(statement)
    columns = ", ".join(_KEPT)
    db.execute(f"INSERT INTO proposals ({columns}, required) SELECT {columns}, 1 "
               "FROM proposals_v1")
    for row in _rows(db, "SELECT * FROM proposals_v1 WHERE signature IS NOT NULL"):
        document = build_v1(row["id"], row["host"], row["action"], json.loads(row["params"]),
                            row["nonce"], row["not_before"], row["not_after"], row["approver"])
        db.execute("UPDATE proposals SET document_text = ? WHERE id = ?",
                   (canonical(document), row["id"]))
        db.execute("INSERT INTO approvals (proposal, principal, method, key_type, signature, "
                   "at) VALUES (?, ?, 'cli', ?, ?, (SELECT COALESCE(MIN(at), ?) FROM "
                   "transitions_v1 WHERE proposal = ? AND to_state = 'approved'))",
                   (row["id"], row["approver"], key_type(row["signature"]),
                    row["signature"], row["updated_at"], row["id"]))
    # the same seq: what a notifications cursor (notify_cursor) points at stays true
    db.execute("INSERT INTO transitions (seq, proposal, at, event, from_state, to_state, "
               "actor, trace, note) SELECT seq, proposal, at, CASE WHEN from_state IS NULL "
               "THEN 'created' ELSE to_state END, from_state, to_state, actor, trace, note "
               "FROM transitions_v1 ORDER BY seq")
    db.execute("DROP TABLE transitions_v1")
    db.execute("DROP TABLE proposals_v1")
    problems = db.execute("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise RuntimeError(f"approval store migration left dangling references: {problems}")
