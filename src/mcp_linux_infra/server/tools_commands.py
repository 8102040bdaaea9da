"""Free-form commands: run one (the target decides), ask the target, or weigh the risk."""

from typing import Annotated

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.analysis import analyze
from mcp_linux_infra.inventory import Host
from mcp_linux_infra.protocol import ProtocolError
from mcp_linux_infra.server import policy_view
from mcp_linux_infra.server.calls import Call, current, tool_call
from mcp_linux_infra.server.common import (
    LOCAL_ONLY,
    READ_ONLY,
    CommandArg,
    HostArg,
    record_refusal,
)
from mcp_linux_infra.server.formatting import FormatArg, render

OPERATOR_HOWTO = (
    "An operator can allow it on these hosts: add a command spec to "
    "mcp_infra_readonly_extra_commands (or enable a plugin in mcp_infra_readonly_plugins) in "
    "the inventory's group_vars, then run ansible-playbook "
    "ansible/playbooks/deploy-mcp-infra.yml. get_learning_suggestions drafts specs from "
    "refused commands.")
DESTINATION_HOWTO = (
    "The read tier reaches and resolves only names and addresses the host's policy lists (the "
    "inventory's hosts, loopback, the site's mcp_infra_network_destinations); resolvers and "
    "servers cannot be chosen, since a lookup or a packet could carry data out.")


def _similar(call: Call, host: Host, command: str) -> list[str]:
    try:
        return policy_view.similar(call.state.policies.get(call.target(host)), command)
    except ProtocolError:
        return []


def register(mcp: MCPServer) -> None:
    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def run_diagnostic(host: HostArg, command: CommandArg, ctx: Context,
                       format: FormatArg = "text") -> CallToolResult:
        """Run any read-only command on a host; the host's own policy decides. A refusal
        says why, which similar forms this host allows, and how an operator could allow it.
        No shell: one command per call, no pipes or redirections."""
        call = current()
        h = call.host(host)
        out = call.target(h).run(command)
        if out.status == "refused":
            record_refusal(call, h, out)
            r = out.refusal
            similar = _similar(call, h, command)
            advice = analyze(command)
            raise ToolError(
                f"{h.name} refused `{command}`: {r.reason} (rule {r.rule}): {r.detail}. "
                + (f"Allowed forms close to it: {'; '.join(similar)}. " if similar else "")
                + f"Risk if allowed: {advice['risk']} ({'; '.join(advice['reasons'][:2])}). "
                + (DESTINATION_HOWTO if r.reason == "destination_not_allowed" else OPERATOR_HOWTO))
        if out.status == "timeout":
            raise ToolError(f"`{command}` timed out on {h.name}: the target stopped it at its "
                            "time limit. Bound it (e.g. a count, fewer lines, a time range).")
        if out.status == "error":
            raise ToolError(f"{h.name} could not run `{command}`: {out.stderr.strip()[:300]}")
        return render({"host": h.name, "command": command, "exit_code": out.exit_code,
                       "truncated": out.truncated, "stdout": out.stdout,
                       "stderr": out.stderr}, format)

    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def explain_command(host: HostArg, command: CommandArg, ctx: Context,
                        format: FormatArg = "json") -> CallToolResult:
        """Ask a host whether it would run a command, by which rule, or why not, without
        running anything (the target's dry run)."""
        call = current()
        h = call.host(host)
        answer = call.target(h).explain(command)
        data = {"host": h.name, **answer, "command": command}
        if not answer.get("allowed"):
            data["similar_allowed"] = _similar(call, h, command)
        return render(data, format)

    @mcp.tool(annotations=LOCAL_ONLY)
    @tool_call
    def analyze_command(
        command: CommandArg, ctx: Context,
        host: Annotated[str | None, Field(
            description="Also ask this host whether it allows the command")] = None,
        format: FormatArg = "json",
    ) -> CallToolResult:
        """Risk of a command if it were allowed: LOW/MEDIUM/HIGH/CRITICAL, category,
        recommendation (ADD_AUTO, ADD_MANUAL, BLOCK) and the reasons (which options
        execute, write, page, follow or reach the network). Advice only: targets decide."""
        call = current()
        data = analyze(command)
        if host:
            h = call.host(host)
            answer = call.target(h).explain(command)
            data["host"] = {"name": h.name, "allowed": bool(answer.get("allowed")),
                            "rule": answer.get("rule"), "reason": answer.get("reason"),
                            "detail": answer.get("detail")}
            if not answer.get("allowed"):
                data["similar_allowed"] = _similar(call, h, command)
        return render(data, format)
