"""The processes using the most CPU or memory."""

from typing import Annotated, Literal

from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.commands import argv
from mcp_linux_infra.server import parsers
from mcp_linux_infra.server.answers import checked, ran
from mcp_linux_infra.server.args import DEFAULT_FORMAT, FormatArg
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.schemas import shape
from mcp_linux_infra.server.toolcall import READ_ONLY, Call, tool


@tool(READ_ONLY, title="Top processes",
      output=shape("total", "processes"))
def get_top_processes(call: Call, host: Host,
                      sort_by: Literal["cpu", "memory"] = "cpu",
                      limit: Annotated[int, Field(ge=1, le=200)] = 15,
                      format: FormatArg = DEFAULT_FORMAT) -> CallToolResult:
    """The processes using the most CPU or memory."""
    out = checked(call, host, call.target(host).run(argv("processes", sort_by=sort_by)))
    rows = parsers.processes(out.stdout)
    return render({**ran(host, out), "total": len(rows), "processes": rows[:limit]}, format)
