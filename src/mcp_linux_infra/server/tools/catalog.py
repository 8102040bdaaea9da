"""The command catalog, as each host enforces it (its `mcp:policy`, cached with a TTL), and
what the hosts keep refusing, drafted as additions an operator may review: never applied."""

from typing import Annotated

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.server import policy_view
from mcp_linux_infra.server.args import FormatArg
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.learning import suggestions
from mcp_linux_infra.server.toolcall import LOCAL_ONLY, READ_ONLY, Call, tool


def _sha(policy: dict) -> str | None:
    return (policy.get("_effective") or {}).get("policy_sha256")


def _older(policy: dict) -> dict[str, str]:
    """What a result from an older wrapper says about it (nothing from a current one)."""
    return {} if policy_view.described(policy) else {"note": policy_view.OLDER_WRAPPER}


@tool(READ_ONLY)
def list_command_plugins(call: Call, host: Host, format: FormatArg = "toon") -> CallToolResult:
    """The plugins (command groups) a host's policy enables, with their commands."""
    policy = call.state.policies.get(call.target(host))
    return render({"host": host.name, "policy_sha256": _sha(policy),
                   "plugins": [{**p, "commands": " ".join(p["commands"])}
                               for p in policy_view.plugins(policy)], **_older(policy)}, format)


@tool(READ_ONLY)
def get_plugin_details(call: Call, host: Host,
                       plugin: Annotated[str, Field(min_length=1, max_length=64)],
                       format: FormatArg = "json") -> CallToolResult:
    """Every command of one plugin on a host: what it is for, its allowed options (and
    their value types) and subcommands."""
    policy = call.state.policies.get(call.target(host))
    plugins = {p["plugin"]: p for p in policy_view.plugins(policy)}
    if not policy_view.described(policy):
        raise ToolError(f"{host.name}: {policy_view.OLDER_WRAPPER}")
    if plugin not in plugins:
        raise ToolError(f"{host.name} has no plugin {plugin!r}; it has: {', '.join(plugins)}")
    allowed = policy_view.commands(policy)
    return render({"host": host.name, "plugin": plugin,
                   "description": plugins[plugin]["description"],
                   "commands": [allowed[c] for c in plugins[plugin]["commands"]]}, format)


@tool(READ_ONLY)
def search_commands(call: Call, host: Host,
                    query: Annotated[str, Field(min_length=1, max_length=64, description=(
                        "A word to find in command names, descriptions and options, "
                        "e.g. `dns`, `journal`, `--since`"))],
                    format: FormatArg = "toon") -> CallToolResult:
    """Find allowed commands on a host by name, description or option."""
    policy = call.state.policies.get(call.target(host))
    return render({"host": host.name, "query": query,
                   "matches": policy_view.search(policy, query), **_older(policy)}, format)


@tool(LOCAL_ONLY)
def get_learning_suggestions(
    call: Call,
    min_count: Annotated[int, Field(ge=1, le=10_000,
                                    description="Refused at least this often")] = 3,
    min_age_hours: Annotated[float, Field(ge=0, le=24 * 365, description=(
        "First refused at least this long ago (a need that persists)"))] = 24,
    format: FormatArg = "json",
) -> CallToolResult:
    """Low-risk commands the hosts keep refusing, drafted as an Ansible variables
    snippet an operator may review and add. Nothing is ever applied automatically."""
    data = suggestions(call.state.learning.refused(min_count, min_age_hours,
                                                         hosts=call.seen_hosts()))
    data.update(min_count=min_count, min_age_hours=min_age_hours)
    return render(data, format)


@tool(LOCAL_ONLY)
def get_learning_stats(call: Call, format: FormatArg = "json") -> CallToolResult:
    """How many commands were refused, why, on which hosts, and the most frequent."""
    return render(call.state.learning.stats(hosts=call.seen_hosts()), format)
