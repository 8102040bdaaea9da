"""The command catalog, as each host enforces it (its `mcp:policy`, cached with a TTL)."""

from typing import Annotated

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.server import policy_view
from mcp_linux_infra.server.calls import current, tool_call
from mcp_linux_infra.server.common import READ_ONLY, HostArg
from mcp_linux_infra.server.formatting import FormatArg, render


def _policy(host: str) -> tuple[str, dict]:
    call = current()
    h = call.host(host)
    return h.name, call.state.policies.get(call.target(h))


def _sha(policy: dict) -> str | None:
    return (policy.get("_effective") or {}).get("policy_sha256")


def register(mcp: MCPServer) -> None:
    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def list_command_plugins(host: HostArg, ctx: Context,
                             format: FormatArg = "toon") -> CallToolResult:
        """The plugins (command groups) a host's policy enables, with their commands."""
        name, policy = _policy(host)
        return render({"host": name, "policy_sha256": _sha(policy),
                       "plugins": [{**p, "commands": " ".join(p["commands"])}
                                   for p in policy_view.plugins(policy)]}, format)

    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def get_plugin_details(host: HostArg,
                           plugin: Annotated[str, Field(min_length=1, max_length=64)],
                           ctx: Context, format: FormatArg = "json") -> CallToolResult:
        """Every command of one plugin on a host: what it is for, its allowed options (and
        their value types) and subcommands."""
        name, policy = _policy(host)
        plugins = {p["plugin"]: p for p in policy_view.plugins(policy)}
        if plugin not in plugins:
            raise ToolError(f"{name} has no plugin {plugin!r}; it has: {', '.join(plugins)}")
        allowed = policy_view.commands(policy)
        return render({"host": name, "plugin": plugin,
                       "description": plugins[plugin]["description"],
                       "commands": [allowed[c] for c in plugins[plugin]["commands"]]}, format)

    @mcp.tool(annotations=READ_ONLY)
    @tool_call
    def search_commands(host: HostArg,
                        query: Annotated[str, Field(min_length=1, max_length=64, description=(
                            "A word to find in command names, descriptions and options, "
                            "e.g. `dns`, `journal`, `--since`"))],
                        ctx: Context, format: FormatArg = "toon") -> CallToolResult:
        """Find allowed commands on a host by name, description or option."""
        name, policy = _policy(host)
        needle = query.lower()
        hits = []
        for command in policy_view.commands(policy).values():
            where = []
            if needle in command["name"].lower():
                where.append("name")
            if needle in command["description"].lower():
                where.append("description")
            options = [o["option"] for o in command["options"] if needle in o["option"].lower()]
            subs = [s for s in command["subcommands"] if needle in s.lower()]
            if options:
                where.append("options: " + ", ".join(options[:5]))
            if subs:
                where.append("subcommands: " + ", ".join(subs[:5]))
            if where:
                hits.append({"command": command["name"], "plugin": command["plugin"],
                             "matched": "; ".join(where),
                             "description": command["description"][:160]})
        return render({"host": name, "query": query, "matches": hits}, format)
