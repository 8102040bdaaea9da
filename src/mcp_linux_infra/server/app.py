"""The MCP server: tools, resources and prompt over one AppState per process."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from mcp.server import MCPServer

from mcp_linux_infra import __version__
from mcp_linux_infra.server import (
    tools_catalog,
    tools_commands,
    tools_diag,
    tools_hosts,
    tools_learning,
)
from mcp_linux_infra.server.state import AppState, Runtime, StateFactory

INSTRUCTIONS = """\
Read-only diagnostics of Linux hosts over SSH. Every host enforces its own whitelist: a
command outside it is refused by the host, with the reason and similar allowed forms.
Start with list_hosts, then diagnose_system on a host or group. There is no shell: one
command per run_diagnostic call, no pipes or redirections. Nothing here changes a host."""


def build_server(open_state: StateFactory, **server_kwargs) -> MCPServer:
    """`open_state` makes the AppState when a session (stdio, HTTP, in-process) starts."""
    runtime = Runtime()

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[AppState]:
        state = await anyio.to_thread.run_sync(open_state)
        runtime.state = state
        state.audit.info("server_start", version=__version__)
        try:
            yield state
        finally:
            state.audit.info("server_stop")
            runtime.state = None
            await anyio.to_thread.run_sync(state.close)

    mcp = MCPServer("mcp-linux-infra", version=__version__, instructions=INSTRUCTIONS,
                    lifespan=lifespan, **server_kwargs)
    tools_hosts.register(mcp, runtime)
    tools_diag.register(mcp)
    tools_commands.register(mcp)
    tools_catalog.register(mcp)
    tools_learning.register(mcp)
    return mcp
