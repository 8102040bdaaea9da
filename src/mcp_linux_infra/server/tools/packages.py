"""Packages with a pending upgrade."""

import signal

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.commands import argv
from mcp_linux_infra.server import parsers
from mcp_linux_infra.server.answers import checked, ran
from mcp_linux_infra.server.args import DEFAULT_FORMAT, FormatArg
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.schemas import shape
from mcp_linux_infra.server.toolcall import READ_ONLY, Call, tool


@tool(READ_ONLY, title="Pending updates",
      output=shape("upgradable", "security", "packages"))
def check_updates(call: Call, host: Host, format: FormatArg = DEFAULT_FORMAT) -> CallToolResult:
    """Pending apt upgrades, security ones flagged."""
    out = checked(call, host, call.target(host).run(argv("upgradable")))
    if out.exit_code == 128 + signal.SIGXFSZ:
        raise ToolError(f"apt was killed on {host.name} by the wrapper's no-write limit "
                        "(SIGXFSZ: apt writes its package cache); the target tier must "
                        "let the packages plugin run before this tool can work")
    if out.exit_code != 0:
        raise ToolError(f"apt failed on {host.name} (exit {out.exit_code}): "
                        f"{out.stderr.strip()[:300]}")
    rows = parsers.apt_upgradable(out.stdout)
    return render({**ran(host, out), "upgradable": len(rows),
                   "security": sum(r["security"] for r in rows), "packages": rows}, format)
