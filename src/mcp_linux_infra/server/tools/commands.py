"""Free-form commands: run one (the host decides), ask the host, or weigh the risk."""

from typing import Annotated

from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.protocol import Outcome, ProtocolError
from mcp_linux_infra.server import policy_view
from mcp_linux_infra.server.answers import checked
from mcp_linux_infra.server.args import CommandArg, FormatArg
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.risk import analyze
from mcp_linux_infra.server.toolcall import LOCAL_ONLY, READ_ONLY, Call, tool

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


def _refused_command(call: Call, host: Host, out: Outcome) -> str:
    """A refused command line of the model's own: why, the allowed forms close to it, the
    risk if it were allowed, and who could allow it."""
    r = out.refusal
    similar = _similar(call, host, out.command)
    advice = analyze(out.command)
    return (f"{host.name} refused `{out.command}`: {r.reason} (rule {r.rule}): {r.detail}. "
            + (f"Allowed forms close to it: {'; '.join(similar)}. " if similar else "")
            + f"Risk if allowed: {advice['risk']} ({'; '.join(advice['reasons'][:2])}). "
            + (DESTINATION_HOWTO if r.reason == "destination_not_allowed" else OPERATOR_HOWTO))


@tool(READ_ONLY)
def run_diagnostic(call: Call, host: Host, command: CommandArg,
                   format: FormatArg = "text") -> CallToolResult:
    """Run any read-only command on a host; the host's own policy decides. A refusal
    says why, which similar forms this host allows, and how an operator could allow it.
    No shell: one command per call, no pipes or redirections."""
    out = checked(call, host, call.target(host).run(command), explain=_refused_command)
    return render({"host": host.name, "command": command, "exit_code": out.exit_code,
                   "truncated": out.truncated, "stdout": out.stdout,
                   "stderr": out.stderr}, format)


@tool(READ_ONLY)
def explain_command(call: Call, host: Host, command: CommandArg,
                    format: FormatArg = "json") -> CallToolResult:
    """Ask a host whether it would run a command, by which rule, or why not, without
    running anything (the target's dry run)."""
    answer = call.target(host).explain(command)
    data = {"host": host.name, **answer, "command": command}
    if not answer.get("allowed"):
        data["similar_allowed"] = _similar(call, host, command)
    return render(data, format)


@tool(LOCAL_ONLY)
def analyze_command(
    call: Call,
    command: CommandArg,
    host: Annotated[str | None, Field(
        description="Also ask this host whether it allows the command")] = None,
    format: FormatArg = "json",
) -> CallToolResult:
    """Risk of a command if it were allowed: LOW/MEDIUM/HIGH/CRITICAL, category,
    recommendation (ADD_AUTO, ADD_MANUAL, BLOCK) and the reasons (which options
    execute, write, page, follow or reach the network). Advice only: targets decide."""
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
