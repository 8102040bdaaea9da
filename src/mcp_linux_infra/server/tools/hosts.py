"""The inventory's hosts and groups, and whether each host answers."""

import time
from typing import Annotated

from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.server.answers import fan_out
from mcp_linux_infra.server.args import DEFAULT_FORMAT, FormatArg, GroupArg
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.resources import host_row
from mcp_linux_infra.server.schemas import shape
from mcp_linux_infra.server.toolcall import READ_ONLY, Call, tool


@tool(READ_ONLY, title="List hosts", output=shape("hosts", "groups"))
def list_hosts(call: Call, host: GroupArg = "all",
               check: Annotated[bool, Field(description="Contact each host")] = True,
               format: FormatArg = DEFAULT_FORMAT) -> CallToolResult:
    """Start here: the inventory's hosts (of a group) and groups; with check, whether
    each answers."""
    hosts = call.hosts(host)
    rows = [host_row(h) for h in hosts]
    if check:
        def probe(host: Host) -> dict:
            began = time.monotonic()
            version = call.target(host).version()
            return {"reachable": True, "wrapper": version.get("version"),
                    "policy_sha256": str(version.get("policy_sha256", ""))[:12],
                    "latency_ms": round((time.monotonic() - began) * 1000, 1)}
        for row, (_, result) in zip(rows, fan_out(call, hosts, probe)):
            if "error" in result:
                row.update(reachable=False, error=result["error"])
            else:
                row.update(result)
    groups = {g: len(m) for g, m in sorted(call.inventory().groups.items())
              if m and g not in ("all", "ungrouped")}
    return render({"hosts": rows, "groups": groups}, format)
