"""One tool call: its trace id, its audit records, and failures turned into ToolErrors.

Only a ToolError's message reaches the client (SDK 2.x hides every other exception), so
each failure the model can act on becomes one, with the hint that says what to do. An
unexpected exception is logged with its traceback and reported by trace id: the server
keeps running either way.
"""

import functools
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from mcp_linux_infra.audit import new_trace_id
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.inventory import Host
from mcp_linux_infra.protocol import ProtocolError, Target
from mcp_linux_infra.server.state import AppState
from mcp_linux_infra.ssh.errors import SSHError

_current: ContextVar["Call"] = ContextVar("mcp_linux_infra_call")


@dataclass
class Call:
    state: AppState
    tool: str
    trace: str
    client: str | None

    def hosts(self, target: str) -> list[Host]:
        return self.state.resolve(target)

    def host(self, name: str) -> Host:
        hosts = self.hosts(name)
        if len(hosts) != 1 or hosts[0].name != name:
            raise UserError(f"{name!r} is a group of {len(hosts)} hosts; this tool takes one "
                            "host", hint=f"hosts in it: {', '.join(h.name for h in hosts[:20])}")
        return hosts[0]

    def target(self, host: Host) -> Target:
        return Target(self.state.pool, host, self.trace)


def current() -> Call:
    return _current.get()


def failure_text(exc: Exception) -> str:
    """The message and, when known, the remedy: what a model or a person reads."""
    hint = getattr(exc, "hint", None)
    return f"{exc}" + (f" — {hint}" if hint else "")


def tool_call(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a sync tool taking `ctx: Context`: trace, audit, and errors the model can use."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx: Context = kwargs["ctx"]
        state: AppState = ctx.request_context.lifespan_context
        token = get_access_token()
        call = Call(state=state, tool=fn.__name__, trace=new_trace_id(),
                    client=token.client_id if token else None)
        arguments = {k: v for k, v in kwargs.items() if k != "ctx"}
        began = time.monotonic()
        reset = _current.set(call)
        outcome, error = "ok", None
        try:
            return fn(*args, **kwargs)
        except ToolError as exc:
            outcome, error = "error", str(exc)
            raise ToolError(f"{exc} (trace {call.trace})") from None
        except (UserError, SSHError, ProtocolError) as exc:
            outcome, error = getattr(exc, "kind", "error"), failure_text(exc)
            raise ToolError(f"{error} (trace {call.trace})") from None
        except Exception as exc:  # noqa: BLE001 - reported by trace id; the server lives on
            outcome, error = "internal_error", repr(exc)
            state.audit.error("tool_exception", tool=call.tool, trace=call.trace,
                              exc_info=True)
            raise ToolError(f"internal error in {call.tool} (trace {call.trace}); the server's "
                            "audit log has the details") from None
        finally:
            _current.reset(reset)
            state.audit.info("tool_call", tool=call.tool, trace=call.trace, client=call.client,
                             arguments=arguments, outcome=outcome, error=error,
                             duration_ms=int((time.monotonic() - began) * 1000))
    return wrapper
