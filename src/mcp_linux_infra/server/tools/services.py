"""A systemd unit's state and its latest journal lines."""

from typing import Annotated

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.commands import argv
from mcp_linux_infra.server import parsers
from mcp_linux_infra.server.answers import checked, problem
from mcp_linux_infra.server.args import DEFAULT_FORMAT, FormatArg, Unit
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.schemas import shape
from mcp_linux_infra.server.times import systemd
from mcp_linux_infra.server.toolcall import READ_ONLY, Call, tool


def unit_batch(unit: str, log_lines: int) -> dict[str, list[str]]:
    """One unit's state (`show`) and, if asked, its latest journal lines (`log`): the batch
    that get_service_status sends."""
    batch = {"show": argv("unit_state", units=[unit])}
    if log_lines:
        batch["log"] = argv("unit_log", unit=unit, lines=log_lines)
    return batch


@tool(READ_ONLY, title="Service status",
      output=shape("service", "active", "verdict", "properties"))
def get_service_status(call: Call, host: Host, service: Unit,
                       log_lines: Annotated[int, Field(ge=0, le=200)] = 20,
                       format: FormatArg = DEFAULT_FORMAT) -> CallToolResult:
    """A systemd unit's state, since when, restarts and latest journal lines; verifies a
    fix."""
    outs = call.target(host).batch(unit_batch(service, log_lines))
    props = (parsers.show(checked(call, host, outs["show"]).stdout) or [{}])[0]
    if props.get("LoadState") == "not-found":
        raise ToolError(f"{host.name} has no unit {service!r}; diagnose_system lists failed "
                        "units, and run_diagnostic `systemctl list-units --type=service` "
                        "lists them all")
    if "ActiveEnterTimestamp" in props:
        props["ActiveEnterTimestamp"] = systemd(props["ActiveEnterTimestamp"])
    name = props.get("Id", service)
    data = {"host": host.name, "service": name, "active": props.get("ActiveState") == "active",
            "verdict": f"{name} is {props.get('ActiveState')} ({props.get('SubState')})",
            "since": props.get("ActiveEnterTimestamp"), "properties": props}
    if log_lines:
        log = outs["log"]
        data["log"] = parsers.journal(log.stdout) if not problem(log) else problem(log)
    return render(data, format)
