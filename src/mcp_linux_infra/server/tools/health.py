"""The health of a host or of every host in a group, in one request per host."""

from typing import Annotated, Literal

from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.server.answers import fan_out
from mcp_linux_infra.server.args import FormatArg, Since, TargetArg
from mcp_linux_infra.server.diagnose import CHECKS, diagnose_host
from mcp_linux_infra.server.diagnose_view import by_check
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.toolcall import READ_ONLY, Call, tool

CheckName = Literal[tuple(CHECKS)]


@tool(READ_ONLY)
def diagnose_system(
    call: Call,
    target: TargetArg,
    checks: Annotated[list[CheckName] | None, Field(
        description="Checks to run (default: all)")] = None,
    since: Since = "-1h",
    format: FormatArg = "json",
) -> CallToolResult:
    """Health of a host or of every host in a group: load, memory, disk, failed units,
    key services, listening ports and recent journal errors, with findings ranked by
    severity. One request per host; hosts are checked in parallel and one host down
    never hides the others. In toon the same data comes by check: tables of hosts,
    findings and problems, then each check's results by host (a row per host where
    the result is flat, as load and memory are)."""
    names = list(dict.fromkeys(checks or CHECKS))
    hosts = call.hosts(target)
    results = fan_out(call, hosts, lambda h: diagnose_host(call, h, names, since))
    reports = []
    for host, result in results:
        if "error" in result:
            reports.append({"host": host.name, "status": "unreachable",
                            "error": result["error"]})
        else:
            reports.append(result)
    summary = {"hosts": len(reports),
               "healthy": [r["host"] for r in reports if r["status"] == "healthy"],
               "degraded": [r["host"] for r in reports if r["status"] == "degraded"],
               "unreachable": [r["host"] for r in reports if r["status"] == "unreachable"]}
    return render({"target": target, "checks": names, "summary": summary,
                   "reports": reports}, format, toon_view=by_check)
