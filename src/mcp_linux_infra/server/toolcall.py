"""One tool call: its trace id, its audit record, its hosts, and failures turned into
ToolErrors; `tool` makes a function a tool that gets all of that.

Only a ToolError's message reaches the client (SDK 2.x hides every other exception), so
each failure the model can act on becomes one, with the hint that says what to do. An
unexpected exception is logged with its traceback and reported by trace id: the server
keeps running either way.
"""

import functools
import inspect
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from mcp_linux_infra.approvals.executor import TargetRefused
from mcp_linux_infra.approvals.store import Proposal, UnknownProposal
from mcp_linux_infra.audit import new_trace_id
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.inventory import Host, Inventory
from mcp_linux_infra.readonly.protocol import ProtocolError, Target
from mcp_linux_infra.server.access import Access, Scope, current
from mcp_linux_infra.server.args import HostArg
from mcp_linux_infra.server.refused import Refused
from mcp_linux_infra.server.state import AppState
from mcp_linux_infra.ssh.errors import SSHError

# Only the hints that differ from the protocol's defaults (not read-only, destructive, not
# idempotent, open world): a read-only tool's destructive and idempotent hints mean nothing.
READ_ONLY = ToolAnnotations(read_only_hint=True)
LOCAL_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
PROPOSES = ToolAnnotations(read_only_hint=False, destructive_hint=False)
EXECUTES = ToolAnnotations(read_only_hint=False, destructive_hint=True)


@dataclass
class Call:
    state: AppState
    tool: str
    trace: str
    client: str | None
    access: Access = field(default_factory=lambda: Access(None, None, None))

    def inventory(self) -> Inventory:
        """The hosts this caller may see (a token limited to groups: only theirs)."""
        return self.access.inventory(self.state.hosts.get())

    def hosts(self, target: str) -> list[Host]:
        return self.inventory().resolve(target)

    def proposal(self, proposal_id: str) -> Proposal:
        """A proposal on a host this caller sees; any other is one that does not exist."""
        p = self.state.approvals.get(proposal_id)
        if self.access.groups is not None and p.host not in self.inventory().hosts:
            raise UnknownProposal.of(proposal_id)
        return p

    def seen_hosts(self) -> list[str] | None:
        """The names of the hosts this caller may see, or None for every host (also those
        not in the inventory any more, which records may still name)."""
        return None if self.access.groups is None else list(self.inventory().hosts)

    def proposals(self, state: str | None, host: str | None, limit: int) -> list[Proposal]:
        """Newest first, on the hosts this caller sees."""
        return self.state.approvals.find(state, host, limit, hosts=self.seen_hosts())

    def host(self, name: str) -> Host:
        hosts = self.hosts(name)
        if len(hosts) != 1 or hosts[0].name != name:
            raise UserError(f"{name!r} is a group of {len(hosts)} hosts; this tool takes one "
                            "host", hint=f"hosts in it: {', '.join(h.name for h in hosts[:20])}")
        return hosts[0]

    def target(self, host: Host) -> Target:
        return Target(self.state.pool, host, self.trace)


def failure_text(exc: Exception) -> str:
    """The message and, when known, the remedy: what a model or a person reads."""
    hint = getattr(exc, "hint", None)
    return f"{exc}" + (f" — {hint}" if hint else "")


def _run(call: Call, fn: Callable[..., Any], arguments: dict[str, Any],
         hosts: list[str], scope: str) -> Any:
    """fn, if the caller has its scope, with its hosts resolved; every failure becomes a
    ToolError with the trace id."""
    began = time.monotonic()
    outcome, error, refused = "ok", None, False
    try:
        call.access.require(scope)
        resolved = {name: call.host(arguments[name]) for name in hosts
                    if arguments.get(name) is not None}
        return fn(call, **{**arguments, **resolved})
    except Refused as exc:
        outcome, error, refused = "error", str(exc), True
        if exc.by == "server":  # the target's are counted where they are recorded
            call.state.metrics.refused(exc.reason, "server")
        raise ToolError(f"{exc} (trace {call.trace})") from None
    except ToolError as exc:
        outcome, error = "error", str(exc)
        raise ToolError(f"{exc} (trace {call.trace})") from None
    except (UserError, SSHError, ProtocolError) as exc:
        outcome, error = getattr(exc, "kind", "error"), failure_text(exc)
        if isinstance(exc, TargetRefused):
            refused = True
            call.state.metrics.refused(exc.reason, "target")
        raise ToolError(f"{error} (trace {call.trace})") from None
    except Exception as exc:  # noqa: BLE001 - reported by trace id; the server lives on
        outcome, error = "internal_error", repr(exc)
        call.state.audit.error("tool_exception", tool=call.tool, trace=call.trace,
                               exc_info=True)
        raise ToolError(f"internal error in {call.tool} (trace {call.trace}); the server's "
                        "audit log has the details") from None
    finally:
        took = time.monotonic() - began
        call.state.metrics.call(call.tool, "refused" if refused else outcome, took)
        call.state.audit.info("tool_call", tool=call.tool, trace=call.trace, client=call.client,
                              arguments=arguments, outcome=outcome, error=error,
                              duration_ms=int(took * 1000))


def tool(annotations: ToolAnnotations, *, title: str, output: dict[str, Any] | None = None,
         scope: Scope = "read") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Make `fn(call: Call, ...)` a tool, titled `title`, whose structured result has the
    schema `output` (schemas.shape), and that a token needs `scope` for (to see it in
    tools/list and to call it). The client sees fn's other parameters, where one annotated
    `Host` (or `Host | None`) is an inventory host name (HostArg) that fn receives resolved;
    the call state comes from the session (the SDK's Context, which the client never sees)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(fn, include_extras=True)
        signature = inspect.signature(fn)
        first, *params = signature.parameters.values()
        if hints.get(first.name) is not Call:
            raise TypeError(f"tool {fn.__name__} must take `call: Call` first")
        hosts = [p.name for p in params if hints[p.name] in (Host, Host | None)]
        public = [p.replace(annotation=(HostArg if hints[p.name] is Host else HostArg | None)
                            if p.name in hosts else hints[p.name]) for p in params]
        public.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY,
                                        annotation=Context))

        @functools.wraps(fn)
        def wrapper(*, ctx: Context, **arguments: Any) -> Any:
            caller = current()
            call = Call(state=ctx.request_context.lifespan_context, tool=fn.__name__,
                        trace=new_trace_id(), client=caller.client, access=caller)
            return _run(call, fn, arguments, hosts, scope)

        wrapper.__signature__ = signature.replace(parameters=public)
        wrapper.__annotations__ = {p.name: p.annotation for p in public} | (
            {"return": hints["return"]} if "return" in hints else {})
        wrapper.__doc__ = " ".join((fn.__doc__ or "").split())  # one line: the description
        wrapper.tool_annotations = annotations
        wrapper.tool_title = title
        wrapper.tool_output = output
        wrapper.tool_scope = scope
        return wrapper
    return decorate
