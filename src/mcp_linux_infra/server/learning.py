"""Refused commands, remembered so an operator can see what the model keeps needing, and
drafts of policy additions from them.

SQLite in WAL mode in the state directory: tool calls record from worker threads while
the learning tools read. Nothing here ever changes a policy; suggestions are text an
operator may review and add to the inventory.
"""

import json
import shlex
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from mcp_linux_infra.server.risk import analyze
from mcp_linux_infra.server.times import iso
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
CREATE INDEX IF NOT EXISTS refusals_command ON refusals (command);
"""


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


def _on(hosts: list[str] | None) -> tuple[str, tuple]:
    """The WHERE clause (constant text) and its argument that keep only `hosts`' rows."""
    if hosts is None:
        return "", ()
    return "WHERE host IN (SELECT value FROM json_each(?))", (json.dumps(hosts),)


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

    def refused(self, min_count: int = 1, min_age_hours: float = 0.0,
                hosts: list[str] | None = None) -> list[RefusedCommand]:
        """Distinct refused command lines seen at least `min_count` times, the first time at
        least `min_age_hours` ago; most frequent first; only on `hosts` when given."""
        cutoff = time.time() - min_age_hours * 3600
        where, args = _on(hosts)
        with self._lock:
            rows = self._db.execute(
                "SELECT command, MAX(name), COUNT(*), GROUP_CONCAT(DISTINCT host), "
                "GROUP_CONCAT(DISTINCT reason), MIN(at), MAX(at), MAX(detail) FROM refusals "
                f"{where} GROUP BY command HAVING COUNT(*) >= ? AND MIN(at) <= ? "
                "ORDER BY COUNT(*) DESC, command", (*args, min_count, cutoff)).fetchall()
        return [RefusedCommand(command=r[0], name=r[1], count=r[2],
                               hosts=sorted(r[3].split(",")), reasons=sorted(r[4].split(",")),
                               first_seen=r[5], last_seen=r[6], detail=r[7] or "")
                for r in rows]

    def stats(self, hosts: list[str] | None = None) -> dict:
        """Counts of refusals, only on `hosts` when given."""
        where, args = _on(hosts)
        with self._lock:
            total, distinct, first, last = self._db.execute(
                f"SELECT COUNT(*), COUNT(DISTINCT command), MIN(at), MAX(at) FROM refusals "
                f"{where}", args).fetchone()
            by_reason = dict(self._db.execute(
                f"SELECT reason, COUNT(*) FROM refusals {where} GROUP BY reason "
                "ORDER BY 2 DESC", args))
            by_host = dict(self._db.execute(
                f"SELECT host, COUNT(*) FROM refusals {where} GROUP BY host ORDER BY 2 DESC",
                args))
            by_name = dict(self._db.execute(
                f"SELECT COALESCE(name, '?'), COUNT(*) FROM refusals {where} GROUP BY 1 "
                "ORDER BY 2 DESC LIMIT 20", args))
        return {"refusals": total, "distinct_commands": distinct, "first_seen": iso(first),
                "last_seen": iso(last), "by_reason": by_reason, "by_host": by_host,
                "top_commands": by_name}

    def close(self) -> None:
        with self._lock:
            self._db.close()


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
