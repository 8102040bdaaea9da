"""Reading a host's answer in a tool: the outcome if the command ran, or a ToolError that says
why not and what would change it; refusals remembered for the learning tools; many hosts at
once."""

import shlex
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.protocol import Outcome, ProtocolError
from mcp_linux_infra.server.refused import Refused
from mcp_linux_infra.server.toolcall import Call, failure_text

T = TypeVar("T")


def command_name(command: str) -> str | None:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    return words[0] if words else None


def record_refusal(call: Call, host: Host, out: Outcome) -> None:
    """Every refusal by a target, a batch entry's too: for the learning tools, and counted."""
    r = out.refusal
    call.state.metrics.refused(r.reason, "target")
    call.state.learning.record(host.name, out.command, r.command or command_name(out.command),
                               r.reason, r.rule, r.detail, call.trace)


# What an operator can change for each kind of refusal (the default: commands and plugins).
_REMEDY = {
    "destination_not_allowed": "the read tier reaches, and resolves, only names and addresses "
    "the host's policy lists (the inventory's hosts, loopback, and the site's "
    "mcp_infra_network_destinations); resolvers and servers cannot be chosen",
    "option_required": "the option that is missing names allow-listed fields; command_catalog "
    "(mode=explain) shows them",
    "bad_value": "a value is outside what this host's policy allows for it (the detail says "
    "what is allowed): change the value, e.g. a simpler pattern or listed field names",
    **dict.fromkeys(("control_char", "unicode_format_char", "non_printable_char"),
                    "a value holds a character the host refuses in any request (the detail "
                    "says which, and where): send printable text"),
}


def refusal_text(call: Call, host: Host, out: Outcome) -> str:
    """Why the target refused a tool's command, and what would change it."""
    r = out.refusal
    remedy = _REMEDY.get(r.reason, (
        f"this host's policy does not allow what {call.tool} needs; "
        "command_catalog(mode=explain) shows the target's reasoning, and an operator can "
        "enable it through the inventory "
        "(mcp_infra_readonly_plugins / mcp_infra_readonly_extra_commands)"))
    return f"{host.name} refused `{out.command}`: {r.reason} ({r.detail}). {remedy[0].upper()}{remedy[1:]}."


Explain = Callable[[Call, Host, Outcome], str]


def checked(call: Call, host: Host, out: Outcome, explain: Explain = refusal_text) -> Outcome:
    """The outcome if the command ran; otherwise a ToolError saying why and what to do (a
    refusal in the words of `explain`, and remembered for the learning tools)."""
    if out.status == "refused":
        record_refusal(call, host, out)
        raise Refused(explain(call, host, out), out.refusal.reason, "target")
    if out.status == "timeout":
        raise ToolError(f"`{out.command}` timed out on {host.name}: the target stopped it at its "
                        "time limit. Bound it (e.g. a count, fewer lines, a time range).")
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


def ran(host: Host, out: Outcome) -> dict[str, Any]:
    """The common head of a single command's result."""
    return {"host": host.name, "command": out.command, "exit_code": out.exit_code,
            "truncated": out.truncated}


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
