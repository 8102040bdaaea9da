"""The approval store's tables (schema 2), and the one-time migration of a schema-1 file.

Schema 2: a proposal holds the one v2 document all its approvers sign (`document_text`,
with its step's nonce and window in columns) and how many distinct operators must sign it
(`required`); `approvals` holds one signature per operator for that document;
`transitions` records every change, of state or not (`event`), by sequence number (what
notifications follow, server/announce.py).

The tables are written once, in SQLite's dialect (database.py hands PostgreSQL its types).
The version is the database's (SQLite's user_version; PostgreSQL's schema_versions row), read
and moved under the schema lock, so two servers starting at once migrate once. A migration
from version N is MIGRATIONS[N], run in the same transaction, in order, up to VERSION.

Schema 1 (SQLite only, PRAGMA user_version 0) had one approver and one v1 signature per
proposal. It is migrated in place: rows are kept; a signed one gets its v1 document as
`document_text` and its signature as its one approval, so an approval signed before the
upgrade still executes (the target accepts v1 for one more release). PostgreSQL stores begin
at schema 2.
"""

import json
from collections.abc import Callable

from mcp_linux_infra.approvals.document import build_v1, canonical
from mcp_linux_infra.approvals.verify import key_type
from mcp_linux_infra.database import Database

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


def ensure(db: Database) -> None:
    """Create the tables, or migrate an older schema to VERSION; refuse a newer one."""
    with db.schema_transaction():
        version = db.schema_version()
        if version == 0 and db.has_table("proposals"):
            version = 1
        if version > VERSION:
            raise RuntimeError(f"approval store schema {version} is newer than this program "
                               f"({VERSION})")
        if version:  # 0: a new database, made at VERSION
            for step in range(version, VERSION):
                MIGRATIONS[step](db)
        for statement in TABLES:
            db.script(statement)
        db.set_schema_version(VERSION)


def _migrate_1(db: Database) -> None:
    """Schema 1 -> 2 (SQLite) inside the caller's transaction (the old tables are renamed,
    copied into the new ones, then dropped; foreign keys are checked before the commit)."""
    for index in ("proposals_state", "transitions_proposal"):
        db.run(f"DROP INDEX IF EXISTS {index}")
    db.run("PRAGMA defer_foreign_keys = ON")
    db.run("ALTER TABLE proposals RENAME TO proposals_v1")
    db.run("ALTER TABLE transitions RENAME TO transitions_v1")
    for statement in TABLES:
        db.script(statement)
    columns = ", ".join(_KEPT)
    db.run(f"INSERT INTO proposals ({columns}, required) SELECT {columns}, 1 FROM proposals_v1")
    for row in db.all("SELECT * FROM proposals_v1 WHERE signature IS NOT NULL"):
        document = build_v1(row["id"], row["host"], row["action"], json.loads(row["params"]),
                            row["nonce"], row["not_before"], row["not_after"], row["approver"])
        db.run("UPDATE proposals SET document_text = ? WHERE id = ?",
               (canonical(document), row["id"]))
        db.run("INSERT INTO approvals (proposal, principal, method, key_type, signature, "
               "at) VALUES (?, ?, 'cli', ?, ?, (SELECT COALESCE(MIN(at), ?) FROM "
               "transitions_v1 WHERE proposal = ? AND to_state = 'approved'))",
               (row["id"], row["approver"], key_type(row["signature"]),
                row["signature"], row["updated_at"], row["id"]))
    # the same seq: what a notifications cursor (notify_cursor) points at stays true
    db.run("INSERT INTO transitions (seq, proposal, at, event, from_state, to_state, "
           "actor, trace, note) SELECT seq, proposal, at, CASE WHEN from_state IS NULL "
           "THEN 'created' ELSE to_state END, from_state, to_state, actor, trace, note "
           "FROM transitions_v1 ORDER BY seq")
    db.run("DROP TABLE transitions_v1")
    db.run("DROP TABLE proposals_v1")
    problems = db.all("PRAGMA foreign_key_check")
    if problems:
        raise RuntimeError(f"approval store migration left dangling references: {problems}")


# from version N to N + 1
MIGRATIONS: dict[int, Callable[[Database], None]] = {1: _migrate_1}
