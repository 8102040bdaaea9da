"""Hosts: the tool that lists them, the resources (hosts, a host's policy), the triage
prompt."""

import json
import time
from typing import Annotated

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context, UserMessage
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.errors import UserError
from mcp_linux_infra.inventory import Host
from mcp_linux_infra.protocol import ProtocolError, Target
from mcp_linux_infra.server.calls import current, tool_call
from mcp_linux_infra.server.common import READ_ONLY, fan_out
from mcp_linux_infra.server.formatting import FormatArg, render
from mcp_linux_infra.server.state import AppState, Runtime
from mcp_linux_infra.ssh.errors import SSHError


def _row(host: Host) -> dict:
    return {"name": host.name, "groups": ",".join(host.groups), "address": host.address,
            "port": host.port}


def register(mcp: MCPServer, runtime: Runtime) -> None:
    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def list_hosts(ctx: Context,
                   target: Annotated[str, Field(min_length=1, max_length=253, description=(
                       "A group or host (default: every host)"))] = "all",
                   check: Annotated[bool, Field(description=(
                       "Contact each host: reachability, wrapper version, policy hash"))] = True,
                   format: FormatArg = "toon") -> CallToolResult:
        """The inventory's hosts and groups, and whether each host answers (all contacted
        in parallel)."""
        call = current()
        hosts = call.hosts(target)
        rows = [_row(h) for h in hosts]
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
        groups = {g: len(m) for g, m in sorted(call.state.hosts.get().groups.items())
                  if m and g not in ("all", "ungrouped")}
        return render({"hosts": rows, "groups": groups}, format)

    @mcp.resource("linux-infra://hosts", mime_type="application/json",
                  description="Every inventory host: name, groups, address, port")
    def hosts_resource() -> str:
        try:
            inventory = runtime.state.hosts.get()
        except UserError as exc:
            raise ResourceError(str(exc)) from None
        return json.dumps([_row(h) for h in inventory.hosts.values()])

    @mcp.resource("linux-infra://hosts/{name}/policy", mime_type="application/json",
                  description="The read-only policy a host enforces (its mcp:policy answer)")
    async def host_policy(name: str, ctx: Context) -> str:
        state: AppState = ctx.request_context.lifespan_context

        def fetch() -> str:
            host = state.hosts.get().hosts.get(name)
            if host is None:
                raise ResourceNotFoundError(f"no host {name!r} in the inventory")
            return json.dumps(state.policies.get(Target(state.pool, host)))
        try:
            return await anyio.to_thread.run_sync(fetch)
        except (UserError, SSHError, ProtocolError) as exc:
            raise ResourceError(str(exc)) from None

    @mcp.prompt(title="Triage a host")
    def triage(host: str, symptom: str = "something is wrong") -> list:
        """A read-only triage plan for a host showing a symptom."""
        return [UserMessage(
            f"Host {host} reports: {symptom}.\n"
            "Triage it read-only, step by step:\n"
            f"1. diagnose_system(target='{host}') and read the findings, worst first.\n"
            "2. For each failed or inactive service: get_service_status, then fetch_logs "
            "for its unit (since the failure).\n"
            "3. Resources: get_top_processes for load or memory findings; disk findings: "
            "run_diagnostic `du -x -d1 -h MOUNT`.\n"
            "4. Network symptoms: get_network_status, check_port, dns_lookup.\n"
            "5. Conclude with the likely cause and the evidence. If one of the host's "
            "actions (list_pra_actions) fixes it, propose it with propose_pra_action and "
            "your evidence as the rationale; a human approves it, then execute_pra_action "
            "and verify. Never claim you changed anything that was not executed.")]
