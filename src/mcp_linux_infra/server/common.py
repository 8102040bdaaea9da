"""What the tools share: argument types, annotations, and reading an answer or failing well."""

import shlex
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_linux_infra.display import free_text_refusal
from mcp_linux_infra.inventory import Host
from mcp_linux_infra.protocol import Outcome, ProtocolError
from mcp_linux_infra.server.calls import Call, failure_text

T = TypeVar("T")

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                            open_world_hint=True)
LOCAL_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                             open_world_hint=False)

HostArg = Annotated[str, Field(min_length=1, max_length=253,
                               description="An inventory host name (list_hosts shows them)")]
TargetArg = Annotated[str, Field(min_length=1, max_length=253,
                                 description="An inventory host or group name")]
CommandArg = Annotated[str, Field(min_length=1, max_length=4096,
                                  description="A command line, e.g. `ss -tlnp` (no shell: "
                                              "pipes, redirections and `;` do not work)")]

def screened(name: str, text: str) -> str:
    """Free text a tool keeps for a person to read (a rationale): `text` if it is printable
    on one line (display.unprintable: `str.isprintable`, the target's rule for requests),
    else a ToolError naming the reason code and the offset."""
    why = free_text_refusal(name, text)
    if why is not None:
        raise ToolError(why)
    return text


def command_name(command: str) -> str | None:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    return words[0] if words else None


def record_refusal(call: Call, host: Host, out: Outcome) -> None:
    r = out.refusal
    call.state.learning.record(host.name, out.command, r.command or command_name(out.command),
                               r.reason, r.rule, r.detail, call.trace)


# What an operator can change for each kind of refusal (the default: commands and plugins).
_REMEDY = {
    "destination_not_allowed": "the read tier reaches, and resolves, only names and addresses "
    "the host's policy lists (the inventory's hosts, loopback, and the site's "
    "mcp_infra_network_destinations); resolvers and servers cannot be chosen",
    "option_required": "the option that is missing names allow-listed fields; explain_command "
    "shows them",
    "bad_value": "a value is outside what this host's policy allows for it (the detail says "
    "what is allowed): change the value, e.g. a simpler pattern or listed field names",
}


def refusal_text(host: Host, out: Outcome, tool: str) -> str:
    """Why the target refused, and what would change it."""
    r = out.refusal
    remedy = _REMEDY.get(r.reason, (
        f"this host's policy does not allow what {tool} needs; explain_command shows the "
        "target's reasoning, and an operator can enable it through the inventory "
        "(mcp_infra_readonly_plugins / mcp_infra_readonly_extra_commands)"))
    return f"{host.name} refused `{out.command}`: {r.reason} ({r.detail}). {remedy[0].upper()}{remedy[1:]}."


def checked(call: Call, host: Host, out: Outcome) -> Outcome:
    """The outcome if the command ran; otherwise a ToolError saying why and what to do."""
    if out.status == "refused":
        record_refusal(call, host, out)
        raise ToolError(refusal_text(host, out, call.tool))
    if out.status == "timeout":
        raise ToolError(f"`{out.command}` timed out on {host.name} (the target stopped it); "
                        "narrow the request, e.g. fewer lines or a shorter time range")
    if out.status == "error":
        raise ToolError(f"{host.name} could not run `{out.command}`: {out.stderr.strip()[:300]}")
    return out


def problem(out: Outcome) -> str | None:
    """Why a batch entry gave no usable answer, or None."""
    if out.status == "refused":
        return f"refused: {out.refusal.reason} ({out.refusal.detail})"
    if out.status in ("timeout", "error"):
        return f"{out.status}: {out.stderr.strip()[:200]}"
    return None


def fan_out(call: Call, hosts: list[Host], fn: Callable[[Host], T]) -> list[tuple[Host, Any]]:
    """fn over hosts in parallel; a host that fails carries its error message instead."""
    def guarded(host: Host):
        try:
            return fn(host)
        except (ToolError, ProtocolError) as exc:
            return {"error": str(exc)}
    results = call.state.pool.map(guarded, hosts)
    return [(h, {"error": failure_text(r), "kind": r.kind} if isinstance(r, Exception) else r)
            for h, r in zip(hosts, results)]
