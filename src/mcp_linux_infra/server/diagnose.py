"""diagnose_system: the health checks as data, all of a host's checks in ONE mcp:batch
request (one SSH round trip), hosts fanned out in parallel."""

from collections.abc import Callable
from dataclasses import dataclass

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.protocol import Outcome
from mcp_linux_infra.server import parsers
from mcp_linux_infra.server.calls import Call
from mcp_linux_infra.server.common import problem, record_refusal

THRESHOLDS = {
    "load_per_cpu": (1.0, 2.0),  # (warning, critical)
    "memory_used_pct": (90.0, 97.0),
    "swap_used_pct": (50.0, 90.0),
    "disk_used_pct": (85.0, 95.0),
}
SERVICE_PROPERTIES = ("Id,LoadState,ActiveState,SubState,UnitFileState,Result,MainPID,"
                      "ExecMainStatus,ActiveEnterTimestamp,NRestarts,Description")


def service_commands(service: str, log_lines: int) -> dict[str, list[str]]:
    """One unit's state (`show`) and, if asked, its latest journal lines (`log`): the batch
    that get_service_status and verify_service both send."""
    commands = {"show": ["systemctl", "show", f"--property={SERVICE_PROPERTIES}", service]}
    if log_lines:
        commands["log"] = ["journalctl", "-u", service, "-n", str(log_lines), "-o", "short-iso",
                           "-q", "--no-hostname"]
    return commands


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


def _load(outs: dict[str, Outcome], findings: Findings) -> dict:
    data = parsers.loadavg(outs["loadavg"].stdout)
    cpus = outs["nproc"].stdout.strip()
    if data and cpus.isdigit():
        data["cpus"] = int(cpus)
        data["load1_per_cpu"] = round(data["load1"] / int(cpus), 2)
        data["load5_per_cpu"] = round(data["load5"] / int(cpus), 2)
        level = _level(data["load5_per_cpu"], "load_per_cpu")
        if level:
            findings.append({"severity": level, "check": "load",
                             "message": f"5-minute load {data['load5']} on {cpus} CPU(s)"})
    return data


def _memory(outs: dict[str, Outcome], findings: Findings) -> dict:
    data = parsers.meminfo(outs["meminfo"].stdout)
    for key, label in (("used_pct", "memory"), ("swap_used_pct", "swap")):
        level = _level(data.get(key), "memory_used_pct" if label == "memory" else "swap_used_pct")
        if level:
            findings.append({"severity": level, "check": "memory",
                             "message": f"{label} {data[key]}% used"})
    return data


def _disk(outs: dict[str, Outcome], findings: Findings) -> list:
    rows = parsers.df(outs["df"].stdout)
    for row in rows:
        level = _level(row["used_pct"], "disk_used_pct")
        if level:
            findings.append({"severity": level, "check": "disk",
                             "message": f"{row['mount']} is {row['used_pct']}% full"})
    return rows


def _failed(outs: dict[str, Outcome], findings: Findings) -> list:
    rows = parsers.units(outs["failed_units"].stdout)
    for row in rows:
        findings.append({"severity": "warning", "check": "failed_units",
                         "message": f"{row['unit']} is {row['active']} ({row['sub']})"})
    return rows


def _services(outs: dict[str, Outcome], findings: Findings) -> list:
    rows = []
    for block in parsers.show(outs["services"].stdout):
        row = {"unit": block.get("Id"), "load": block.get("LoadState"),
               "active": block.get("ActiveState"), "sub": block.get("SubState"),
               "enabled": block.get("UnitFileState"), "since": block.get("ActiveEnterTimestamp"),
               "restarts": block.get("NRestarts")}
        rows.append(row)
        if row["load"] == "not-found":
            findings.append({"severity": "info", "check": "services",
                             "message": f"{row['unit']} is not installed"})
        elif row["active"] != "active":
            findings.append({"severity": "critical" if row["active"] == "failed" else "warning",
                             "check": "services",
                             "message": f"key service {row['unit']} is {row['active']} "
                                        f"({row['sub']})"})
    return rows


def _ports(outs: dict[str, Outcome], findings: Findings) -> list:
    return parsers.listening(outs["ports"].stdout)


def _errors(outs: dict[str, Outcome], findings: Findings) -> dict:
    rows = parsers.journal(outs["errors"].stdout)
    if rows:
        sources = sorted({r["source"] for r in rows if r["source"]})
        findings.append({"severity": "warning", "check": "errors",
                         "message": f"{len(rows)} error(s) in the journal from "
                                    f"{', '.join(sources[:8])}"})
    return {"count": len(rows), "entries": rows[-20:]}


@dataclass(frozen=True)
class Check:
    commands: Callable[[Call, Host, str], dict[str, list[str]]]
    summarize: Callable[[dict[str, Outcome], Findings], object]


CHECKS: dict[str, Check] = {
    "load": Check(lambda c, h, s: {"loadavg": ["cat", "/proc/loadavg"], "nproc": ["nproc"]},
                  _load),
    "memory": Check(lambda c, h, s: {"meminfo": ["cat", "/proc/meminfo"]}, _memory),
    "disk": Check(lambda c, h, s: {"df": ["df", "-P", "-T", "-B1"]}, _disk),
    "failed_units": Check(lambda c, h, s: {"failed_units": [
        "systemctl", "list-units", "--failed", "--plain", "--no-legend"]}, _failed),
    "services": Check(lambda c, h, s: {"services": [
        "systemctl", "show", f"--property={SERVICE_PROPERTIES}", *key_services(c, h)]},
        _services),
    "ports": Check(lambda c, h, s: {"ports": ["ss", "-H", "-t", "-u", "-l", "-n"]}, _ports),
    "errors": Check(lambda c, h, s: {"errors": [
        "journalctl", "-p", "err", "-n", "200", "--since", s, "-o", "short-iso", "-q",
        "--no-hostname"]}, _errors),
}


def diagnose_host(call: Call, host: Host, checks: list[str], since: str) -> dict:
    """One batch for every check of this host; a check whose command failed says why."""
    commands: dict[str, list[str]] = {}
    for name in checks:
        commands.update(CHECKS[name].commands(call, host, since))
    outs = call.target(host).batch(commands)
    findings: Findings = []
    results, problems = {}, {}
    for name in checks:
        mine = {i: outs[i] for i in CHECKS[name].commands(call, host, since)}
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
