"""The resources (the hosts, a host's policy) and the triage prompt."""

import json

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context, UserMessage
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from mcp_linux_infra.errors import UserError
from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.protocol import ProtocolError, Target
from mcp_linux_infra.server import access
from mcp_linux_infra.server.state import AppState, Runtime
from mcp_linux_infra.ssh.errors import SSHError


def host_row(host: Host) -> dict:
    return {"name": host.name, "groups": ",".join(host.groups), "address": host.address,
            "port": host.port}


def register(mcp: MCPServer, runtime: Runtime) -> None:
    @mcp.resource("linux-infra://hosts", mime_type="application/json",
                  description="Every inventory host: name, groups, address, port")
    def hosts_resource() -> str:
        try:
            inventory = access.current().inventory(runtime.state.hosts.get())
        except UserError as exc:
            raise ResourceError(str(exc)) from None
        return json.dumps([host_row(h) for h in inventory.hosts.values()])

    @mcp.resource("linux-infra://hosts/{name}/policy", mime_type="application/json",
                  description="The read-only policy a host enforces (its mcp:policy answer)")
    async def host_policy(name: str, ctx: Context) -> str:
        state: AppState = ctx.request_context.lifespan_context
        caller = access.current()

        def fetch() -> str:
            host = caller.inventory(state.hosts.get()).hosts.get(name)
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
            f"1. diagnose_system(host='{host}') and read the findings, worst first.\n"
            "2. For each failed or inactive service: get_service_status, then fetch_logs "
            "for its unit (since the failure).\n"
            "3. Resources: get_top_processes for load or memory findings; disk findings: "
            "run_diagnostic `du -x -d1 -h MOUNT`.\n"
            "4. Network symptoms: get_network_status, check_port, dns_lookup.\n"
            "5. Conclude with the likely cause and the evidence. If one of the host's "
            "actions (list_pra_actions) fixes it, propose it with propose_pra_action and "
            "your evidence as the rationale; a human approves it, then execute_pra_action "
            "and verify with get_service_status. Never claim you changed anything that was "
            "not executed.")]
