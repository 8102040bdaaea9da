"""diagnose_system: the health checks as data, all of a host's checks in ONE mcp:batch
request (one SSH round trip), hosts fanned out in parallel."""

from collections.abc import Callable
from dataclasses import dataclass

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.commands import argv
from mcp_linux_infra.readonly.protocol import Outcome
from mcp_linux_infra.server import journal_groups, parsers
from mcp_linux_infra.server.answers import problem, record_refusal
from mcp_linux_infra.server.times import systemd
from mcp_linux_infra.server.toolcall import Call

THRESHOLDS = {
    "load_per_cpu": (1.0, 2.0),  # (warning, critical)
    "memory_used_pct": (90.0, 97.0),
    "swap_used_pct": (50.0, 90.0),
    "disk_used_pct": (85.0, 95.0),
}
ERROR_GROUPS = 10  # groups of journal errors shown, the most frequent and recent first


def _level(value: float | None, key: str) -> str | None:
    if value is None:
        return None
    warning, critical = THRESHOLDS[key]
    return "critical" if value >= critical else "warning" if value >= warning else None


def key_services(call: Call, host: Host) -> list[str]:
    extra = host.vars.get("mcp_key_services") or []
    return list(dict.fromkeys([*call.state.settings.key_services,
                               *(extra if isinstance(extra, list) else [extra])]))


Findings = list[dict]


def _find(findings: Findings, check: str, severity: str | None, message: str) -> None:
    """A finding of `check`, if it has a severity."""
    if severity:
        findings.append({"severity": severity, "check": check, "message": message})


def _load(outs: dict[str, Outcome], findings: Findings) -> dict:
    data = parsers.loadavg(outs["loadavg"].stdout)
    cpus = outs["nproc"].stdout.strip()
    if data and cpus.isdigit():
        data["cpus"] = int(cpus)
        data["load1_per_cpu"] = round(data["load1"] / int(cpus), 2)
        data["load5_per_cpu"] = round(data["load5"] / int(cpus), 2)
        _find(findings, "load", _level(data["load5_per_cpu"], "load_per_cpu"),
              f"5-minute load {data['load5']} on {cpus} CPU(s)")
    return data


def _memory(outs: dict[str, Outcome], findings: Findings) -> dict:
    data = parsers.meminfo(outs["meminfo"].stdout)
    for key, label, threshold in (("used_pct", "memory", "memory_used_pct"),
                                  ("swap_used_pct", "swap", "swap_used_pct")):
        _find(findings, "memory", _level(data.get(key), threshold),
              f"{label} {data.get(key)}% used")
    return data


def _disk(outs: dict[str, Outcome], findings: Findings) -> list:
    rows = parsers.df(outs["df"].stdout)
    for row in rows:
        _find(findings, "disk", _level(row["used_pct"], "disk_used_pct"),
              f"{row['mount']} is {row['used_pct']}% full")
    return rows


def _failed(outs: dict[str, Outcome], findings: Findings) -> list:
    rows = parsers.units(outs["failed_units"].stdout)
    for row in rows:
        _find(findings, "failed_units", "warning",
              f"{row['unit']} is {row['active']} ({row['sub']})")
    return rows


def _services(outs: dict[str, Outcome], findings: Findings) -> list:
    rows = []
    for block in parsers.show(outs["services"].stdout):
        row = {"unit": block.get("Id"), "load": block.get("LoadState"),
               "active": block.get("ActiveState"), "sub": block.get("SubState"),
               "enabled": block.get("UnitFileState"),
               "since": systemd(block.get("ActiveEnterTimestamp")),
               "restarts": block.get("NRestarts")}
        rows.append(row)
        if row["load"] == "not-found":
            _find(findings, "services", "info", f"{row['unit']} is not installed")
        elif row["active"] != "active":
            _find(findings, "services", "critical" if row["active"] == "failed" else "warning",
                  f"key service {row['unit']} is {row['active']} ({row['sub']})")
    return rows


def _ports(outs: dict[str, Outcome], findings: Findings) -> list:
    return parsers.listening(outs["ports"].stdout)


def _errors(outs: dict[str, Outcome], findings: Findings) -> dict:
    """The journal's errors grouped (journal_groups), so one repeated line takes one row."""
    rows = parsers.journal_json(outs["errors"].stdout)
    groups = journal_groups.group(rows)
    if groups:
        top = groups[0]
        source = (top["identifier"] or "?") + (f" ({top['unit']})" if top["unit"] else "")
        _find(findings, "errors", "warning",
              f"{len(rows)} error(s) in the journal, {len(groups)} distinct; the most "
              f"frequent, {top['count']}x from {source}: {top['example']}")
    return {"count": len(rows), "distinct": len(groups), "groups": groups[:ERROR_GROUPS]}


@dataclass(frozen=True)
class Check:
    """A check: its commands (batch id -> registry name) and how it reads their answers."""

    commands: dict[str, str]
    summarize: Callable[[dict[str, Outcome], Findings], object]

    def argvs(self, call: Call, host: Host, since: str) -> dict[str, list[str]]:
        values = {"since": since, "units": key_services(call, host)}
        return {ident: argv(name, **values) for ident, name in self.commands.items()}


CHECKS: dict[str, Check] = {
    "load": Check({"loadavg": "loadavg", "nproc": "nproc"}, _load),
    "memory": Check({"meminfo": "meminfo"}, _memory),
    "disk": Check({"df": "df"}, _disk),
    "failed_units": Check({"failed_units": "failed_units"}, _failed),
    "services": Check({"services": "unit_state"}, _services),
    "ports": Check({"ports": "listening"}, _ports),
    "errors": Check({"errors": "journal_errors"}, _errors),
}


def diagnose_host(call: Call, host: Host, checks: list[str], since: str) -> dict:
    """One batch for every check of this host; a check whose command failed says why."""
    commands: dict[str, list[str]] = {}
    for name in checks:
        commands.update(CHECKS[name].argvs(call, host, since))
    outs = call.target(host).batch(commands)
    findings: Findings = []
    results, problems = {}, {}
    for name in checks:
        mine = {i: outs[i] for i in CHECKS[name].commands}
        bad = {i: p for i, o in mine.items() if (p := problem(o))}
        for out in mine.values():
            if out.status == "refused":
                record_refusal(call, host, out)
        if bad:
            problems[name] = "; ".join(f"`{mine[i].command}` {p}" for i, p in bad.items())
            continue
        results[name] = CHECKS[name].summarize(mine, findings)
        if any(o.truncated for o in mine.values()):
            problems[name] = "output truncated by the target's cap"
    order = {"critical": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order[f["severity"]])
    return {"host": host.name, "status": "degraded" if findings or problems else "healthy",
            "findings": findings, "problems": problems, "checks": results}
