"""Free-form commands: run one; the host decides."""

from mcp.types import CallToolResult

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.protocol import Outcome, ProtocolError
from mcp_linux_infra.server import policy_view
from mcp_linux_infra.server.answers import checked
from mcp_linux_infra.server.args import DEFAULT_FORMAT, CommandArg, FormatArg
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.risk import analyze
from mcp_linux_infra.server.schemas import shape
from mcp_linux_infra.server.toolcall import READ_ONLY, Call, tool

OPERATOR_HOWTO = (
    "An operator can allow it on these hosts: add a command spec to "
    "mcp_infra_readonly_extra_commands (or enable a plugin in mcp_infra_readonly_plugins) in "
    "the inventory's group_vars, then run ansible-playbook "
    "ansible/playbooks/deploy-mcp-infra.yml. command_catalog(mode=suggestions) drafts specs "
    "from refused commands.")
DESTINATION_HOWTO = (
    "The read tier reaches and resolves only names and addresses the host's policy lists (the "
    "inventory's hosts, loopback, the site's mcp_infra_network_destinations); resolvers and "
    "servers cannot be chosen, since a lookup or a packet could carry data out.")


def similar_allowed(call: Call, host: Host, command: str) -> list[str]:
    try:
        return policy_view.similar(call.state.policies.get(call.target(host)), command)
    except ProtocolError:
        return []


def _refused_command(call: Call, host: Host, out: Outcome) -> str:
    """A refused command line of the model's own: why, the allowed forms close to it, the
    risk if it were allowed, and who could allow it."""
    r = out.refusal
    similar = similar_allowed(call, host, out.command)
    advice = analyze(out.command)
    return (f"{host.name} refused `{out.command}`: {r.reason} (rule {r.rule}): {r.detail}. "
            + (f"Allowed forms close to it: {'; '.join(similar)}. " if similar else "")
            + f"Risk if allowed: {advice['risk']} ({'; '.join(advice['reasons'][:2])}). "
            + (DESTINATION_HOWTO if r.reason == "destination_not_allowed" else OPERATOR_HOWTO))


@tool(READ_ONLY, title="Run a command",
      output=shape("exit_code", "stdout", "stderr"))
def run_diagnostic(call: Call, host: Host, command: CommandArg,
                   format: FormatArg = DEFAULT_FORMAT) -> CallToolResult:
    """Any read-only command when no tool fits; the host's policy decides, a refusal
    says why."""
    out = checked(call, host, call.target(host).run(command), explain=_refused_command)
    return render({"host": host.name, "command": command, "exit_code": out.exit_code,
                   "truncated": out.truncated, "stdout": out.stdout,
                   "stderr": out.stderr}, format)
