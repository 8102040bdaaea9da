"""Refused commands, remembered so an operator can see what the model keeps needing, and
drafts of policy additions from them.

In the store's database (database.py): an SQLite file (WAL) in the state directory, or the
PostgreSQL database several servers share, so that what one server saw refused, the others'
learning tools see too. Tool calls record from worker threads while the learning tools read. Nothing here ever changes a policy; suggestions are text an
operator may review and add to the inventory.
"""

import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from mcp_linux_infra.database import Database, SQLite, only_hosts, open_database
from mcp_linux_infra.server.risk import analyze
from mcp_linux_infra.server.times import iso
from mcp_linux_infra.settings import Settings
from mcp_linux_infra.target_names import PROGRAM_DIRS

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
CREATE INDEX IF NOT EXISTS refusals_command ON refusals (command)
"""
VERSION = 1


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
    def __init__(self, db: Database | Path):
        """`db`: the store's database (a path: an SQLite file)."""
        self._db = db if isinstance(db, Database) else SQLite(db, "learning")
        with self._db.schema_transaction():
            version = self._db.schema_version()
            if version > VERSION:
                raise RuntimeError(f"learning store schema {version} is newer than this "
                                   f"program ({VERSION})")
            self._db.script(_SCHEMA)
            self._db.set_schema_version(VERSION)

    def record(self, host: str, command: str, name: str | None, reason: str, rule: str | None,
               detail: str, trace: str | None, at: float | None = None) -> None:
        self._db.run(
            "INSERT INTO refusals (at, host, command, name, reason, rule, detail, trace) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (at or time.time(), host, command, name, reason, rule, detail, trace))

    def refused(self, min_count: int = 1, min_age_hours: float = 0.0,
                hosts: list[str] | None = None) -> list[RefusedCommand]:
        """Distinct refused command lines seen at least `min_count` times, the first time at
        least `min_age_hours` ago; most frequent first; only on `hosts` when given."""
        cutoff = time.time() - min_age_hours * 3600
        where, args = only_hosts(hosts)
        concat = self._db.group_concat
        rows = self._db.all(
            f"SELECT command, MAX(name) AS name, COUNT(*) AS n, {concat('host')} AS hosts, "
            f"{concat('reason')} AS reasons, MIN(at) AS first_seen, MAX(at) AS last_seen, "
            f"MAX(detail) AS detail FROM refusals WHERE {where} GROUP BY command "
            "HAVING COUNT(*) >= ? AND MIN(at) <= ? ORDER BY COUNT(*) DESC, command",
            (*args, min_count, cutoff))
        return [RefusedCommand(command=r["command"], name=r["name"], count=r["n"],
                               hosts=sorted(r["hosts"].split(",")),
                               reasons=sorted(r["reasons"].split(",")),
                               first_seen=r["first_seen"], last_seen=r["last_seen"],
                               detail=r["detail"] or "")
                for r in rows]

    def stats(self, hosts: list[str] | None = None) -> dict:
        """Counts of refusals, only on `hosts` when given."""
        where, args = only_hosts(hosts)
        totals = self._db.one("SELECT COUNT(*) AS total, COUNT(DISTINCT command) AS distinct_, "
                              f"MIN(at) AS first, MAX(at) AS last FROM refusals WHERE {where}",
                              args)
        by_reason, by_host, by_name = (
            {r["k"]: r["n"] for r in self._db.all(
                f"SELECT {key} AS k, COUNT(*) AS n FROM refusals WHERE {where} GROUP BY 1 "
                f"ORDER BY 2 DESC, 1{limit}", args)}
            for key, limit in (("reason", ""), ("host", ""), ("COALESCE(name, '?')", " LIMIT 20")))
        return {"refusals": totals["total"], "distinct_commands": totals["distinct_"],
                "first_seen": iso(totals["first"]), "last_seen": iso(totals["last"]),
                "by_reason": by_reason, "by_host": by_host, "top_commands": by_name}

    def close(self) -> None:
        self._db.close()


def open_learning(settings: Settings) -> LearningStore:
    """The refused commands of these settings: PostgreSQL's if database_url is set, else
    the state directory's file."""
    return LearningStore(open_database(settings.database_url, settings.state_dir,
                                       "learning.sqlite3", "learning"))


HEADER = """\
# Drafted by mcp-linux-infra from refused commands. REVIEW EVERY LINE before use:
# options that take a value need a value type, and operand types are guesses.
# Add to the inventory (e.g. group_vars/<group>.yml), then run:
#   ansible-playbook ansible/playbooks/deploy-mcp-infra.yml
"""


def _operand_spec(operands: list[list[str]]) -> dict | None:
    words = [w for ws in operands for w in ws]
    if not words:
        return None
    if all(w.startswith("/") for w in words):
        kind = {"type": "read_path"}
    elif all(w.isdigit() for w in words):
        kind = {"type": "int", "min": 0, "max": max(int(w) for w in words) * 10 or 10}
    else:
        kind = {"type": "short_text"}
    return {"rest": kind, "max": max(len(ws) for ws in operands)}


def draft_spec(name: str, commands: list[RefusedCommand]) -> dict:
    """A readonly.json command spec allowing exactly the observed options and operands."""
    options: dict[str, dict | None] = {}
    operands: list[list[str]] = []
    for refused in commands:
        mine = []
        for word in shlex.split(refused.command)[1:]:
            if word.startswith("--") and "=" in word:
                options[word.split("=", 1)[0]] = {"type": "short_text"}
            elif word.startswith("-") and len(word) > 1:
                options.setdefault(word, None)
            else:
                mine.append(word)
        operands.append(mine)
    spec: dict = {"executable": [f"{d}/{name}" for d in PROGRAM_DIRS],
                  "description": f"Site addition drafted from {sum(c.count for c in commands)} "
                                 "refusal(s); reviewed by: <operator>"}
    if options:
        spec["options"] = options
    operand = _operand_spec(operands)
    if operand:
        spec["operands"] = operand
    return spec


def suggestions(refused: list[RefusedCommand]) -> dict:
    """Split refused commands into drafts (low risk, unknown to the policy) and the rest."""
    drafts: dict[str, list[RefusedCommand]] = {}
    not_proposed = []
    for item in refused:
        advice = analyze(item.command)
        row = {"command": item.command, "count": item.count, "hosts": item.hosts,
               "risk": advice["risk"], "recommendation": advice["recommendation"],
               "reasons": advice["reasons"][:3]}
        if advice["recommendation"] == "ADD_AUTO" and "unknown_command" in item.reasons:
            drafts.setdefault(advice["binary"], []).append(item)
        else:
            if item.reasons == ["command_not_installed"]:
                row["why_not"] = (f"{item.name} is allowed but not installed on "
                                  f"{', '.join(item.hosts)}")
            elif "destination_not_allowed" in item.reasons:
                row["why_not"] = ("a destination the host's policy does not list; an operator "
                                  "adds names the site trusts to mcp_infra_network_destinations")
            elif "unknown_command" not in item.reasons:
                row["why_not"] = (f"{item.name} is in the policy; this form was refused "
                                  f"({', '.join(item.reasons)}: {item.detail}). Widening an "
                                  "existing command is a manual policy change.")
            else:
                row["why_not"] = f"risk {advice['risk']}: an operator must decide"
            not_proposed.append(row)
    specs = {name: draft_spec(name, items) for name, items in sorted(drafts.items())}
    snippet = HEADER + yaml.safe_dump({"mcp_infra_readonly_extra_commands": specs},
                                      sort_keys=False) if specs else ""
    return {"proposed": [{"command": name, "refusals": sum(i.count for i in items),
                          "hosts": sorted({h for i in items for h in i.hosts}),
                          "examples": [i.command for i in items[:3]]}
                         for name, items in sorted(drafts.items())],
            "ansible_vars_snippet": snippet, "not_proposed": not_proposed}
