"""The command catalog, as each host enforces it (its `mcp:policy`, cached with a TTL), a
command's risk, and what the hosts keep refusing, drafted as additions an operator may
review: never applied. One tool with a mode: these are questions a model asks rarely, and
each tool costs every conversation its description."""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.server import policy_view
from mcp_linux_infra.server.args import DEFAULT_FORMAT, FormatArg
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.learning import suggestions
from mcp_linux_infra.server.risk import analyze
from mcp_linux_infra.server.schemas import shape
from mcp_linux_infra.server.toolcall import READ_ONLY, Call, tool
from mcp_linux_infra.server.tools.commands import similar_allowed


def _sha(policy: dict) -> str | None:
    return (policy.get("_effective") or {}).get("policy_sha256")


def _older(policy: dict) -> dict[str, str]:
    """What a result from an older wrapper says about it (nothing from a current one)."""
    return {} if policy_view.described(policy) else {"note": policy_view.OLDER_WRAPPER}


Mode = Literal["plugins", "plugin", "search", "explain", "risk", "suggestions", "refusals"]
NEEDS = {"plugins": "host", "plugin": "host and query", "search": "host and query",
         "explain": "host and query", "risk": "query"}


def _explain(call: Call, host: Host, command: str) -> dict[str, Any]:
    """Would the host run it, by which rule or why not (its dry run), the allowed forms
    close to it, and its risk if it were allowed."""
    answer = call.target(host).explain(command)
    data = {"host": host.name, **answer, "command": command}
    if not answer.get("allowed"):
        data["similar_allowed"] = similar_allowed(call, host, command)
    data["risk"] = analyze(command)
    return data


def _policy(call: Call, host: Host, mode: str, query: str | None) -> dict[str, Any]:
    policy = call.state.policies.get(call.target(host))
    if mode == "plugins":
        return {"host": host.name, "policy_sha256": _sha(policy),
                "plugins": [{**p, "commands": " ".join(p["commands"])}
                            for p in policy_view.plugins(policy)], **_older(policy)}
    if mode == "search":
        return {"host": host.name, "query": query,
                "matches": policy_view.search(policy, query), **_older(policy)}
    plugins = {p["plugin"]: p for p in policy_view.plugins(policy)}
    if not policy_view.described(policy):
        raise ToolError(f"{host.name}: {policy_view.OLDER_WRAPPER}")
    if query not in plugins:
        raise ToolError(f"{host.name} has no plugin {query!r}; it has: {', '.join(plugins)}")
    allowed = policy_view.commands(policy)
    return {"host": host.name, "plugin": query, "description": plugins[query]["description"],
            "commands": [allowed[c] for c in plugins[query]["commands"]]}


@tool(READ_ONLY, title="Command catalog", output=shape("mode"))
def command_catalog(
    call: Call,
    mode: Mode = "plugins",
    host: Host | None = None,
    query: Annotated[str | None, Field(min_length=1, max_length=4096)] = None,
    min_count: Annotated[int, Field(ge=1, le=10_000)] = 3,
    min_age_hours: Annotated[float, Field(ge=0, le=24 * 365)] = 24,
    format: FormatArg = DEFAULT_FORMAT,
) -> CallToolResult:
    """What a host allows and what hosts refuse, by mode. plugins, plugin (query: name),
    search (query: word): the host's commands. explain (query: command): would it run,
    why, similar forms, risk. risk: a command's risk. refusals: counts. suggestions:
    drafts for an operator."""
    need = NEEDS.get(mode, "")
    if ("host" in need and host is None) or ("query" in need and query is None):
        raise ToolError(f"mode {mode} needs {need}")
    if mode in ("plugin", "search") and len(query) > 64:
        raise ToolError(f"mode {mode}: query is a name or a word of at most 64 characters")
    if mode == "explain":
        data = _explain(call, host, query)
    elif mode == "risk":
        data = {"command": query, **analyze(query)}
    elif mode == "suggestions":
        data = suggestions(call.state.learning.refused(min_count, min_age_hours,
                                                      hosts=call.seen_hosts()))
        data.update(min_count=min_count, min_age_hours=min_age_hours)
    elif mode == "refusals":
        data = call.state.learning.stats(hosts=call.seen_hosts())
    else:
        data = _policy(call, host, mode, query)
    return render({"mode": mode, **data}, format)
