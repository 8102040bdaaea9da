"""Containers and their logs, where an admin granted the reader a read-only view."""


from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.commands import argv
from mcp_linux_infra.server import parsers
from mcp_linux_infra.server.answers import checked, problem, ran
from mcp_linux_infra.server.args import (
    DEFAULT_FORMAT,
    Container,
    ContainerRuntime,
    FormatArg,
    Lines,
    Since,
)
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.schemas import shape
from mcp_linux_infra.server.toolcall import READ_ONLY, Call, tool


@tool(READ_ONLY, title="List containers", output=shape("runtimes"))
def list_containers(call: Call, host: Host, runtime: ContainerRuntime | None = None,
                    format: FormatArg = DEFAULT_FORMAT) -> CallToolResult:
    """Containers (docker, podman), where the reader was granted a view."""
    runtimes = [runtime] if runtime else ["docker", "podman"]
    outs = call.target(host).batch({r: argv("containers", runtime=r) for r in runtimes})
    data = {"host": host.name, "runtimes": {}}
    for r, out in outs.items():
        if out.status == "ok" and out.exit_code == 0:
            data["runtimes"][r] = parsers.columns(out.stdout)
        else:
            data["runtimes"][r] = {"unavailable": problem(out) or out.stderr.strip()[:300]}
    return render(data, format)


@tool(READ_ONLY, title="Container logs",
      output=shape("container", "lines"))
def container_logs(call: Call, host: Host,
                   container: Container,
                   runtime: ContainerRuntime = "docker", lines: Lines = 100,
                   since: Since | None = None,
                   format: FormatArg = DEFAULT_FORMAT) -> CallToolResult:
    """The latest log lines of a container."""
    out = checked(call, host, call.target(host).run(argv(
        "container_logs", runtime=runtime, lines=lines, since=since, container=container)))
    if out.exit_code != 0:
        raise ToolError(f"{runtime} logs failed on {host.name}: {out.stderr.strip()[:300]}")
    return render({**ran(host, out), "container": container,
                   "lines": (out.stdout + out.stderr).splitlines()}, format)
