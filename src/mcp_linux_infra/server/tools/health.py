"""The health of a host or of every host in a group, in one request per host."""

from typing import Annotated, Literal

from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.server.answers import fan_out
from mcp_linux_infra.server.args import DEFAULT_FORMAT, FormatArg, GroupArg, Since
from mcp_linux_infra.server.diagnose import CHECKS, diagnose_host
from mcp_linux_infra.server.diagnose_view import by_check
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.schemas import shape
from mcp_linux_infra.server.toolcall import READ_ONLY, Call, tool

CheckName = Literal[tuple(CHECKS)]


@tool(READ_ONLY, title="Diagnose hosts",
      output=shape("summary", "reports"))
def diagnose_system(
    call: Call,
    host: GroupArg,
    checks: Annotated[list[CheckName] | None, Field(description="Default: all")] = None,
    since: Since = "-1h",
    format: FormatArg = DEFAULT_FORMAT,
) -> CallToolResult:
    """First look at a host or group: load, memory, disk, failed units, services, ports,
    journal errors; findings by severity."""
    names = list(dict.fromkeys(checks or CHECKS))
    hosts = call.hosts(host)
    results = fan_out(call, hosts, lambda h: diagnose_host(call, h, names, since))
    reports = []
    for one, result in results:
        if "error" in result:
            reports.append({"host": one.name, "status": "unreachable",
                            "error": result["error"]})
        else:
            reports.append(result)
    summary = {"hosts": len(reports),
               "healthy": [r["host"] for r in reports if r["status"] == "healthy"],
               "degraded": [r["host"] for r in reports if r["status"] == "degraded"],
               "unreachable": [r["host"] for r in reports if r["status"] == "unreachable"]}
    return render({"host": host, "checks": names, "summary": summary,
                   "reports": reports}, format, toon_view=by_check)
