"""The MCP server: tools, resources and prompt over one AppState per process."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from mcp.server import MCPServer

from mcp_linux_infra import __version__
from mcp_linux_infra.server import access, resources, tools
from mcp_linux_infra.server.schemas import compact
from mcp_linux_infra.server.state import AppState, Runtime, StateFactory

INSTRUCTIONS = """\
Diagnostics of Linux hosts over SSH, and fixes that a human approves. Every host enforces
its own whitelist: a command outside it is refused by the host, with the reason and similar
allowed forms. Start with list_hosts, then diagnose_system on a host or group. There is no
shell: one command per run_diagnostic call, no pipes or redirections. The read-only tools
change nothing. `host` is an inventory host name (a group too where the tool says so).
Results: the data is the structured content (format=json, the default: the text is a
one-line summary); format=toon (compact) or text (aligned) also puts the data in the text,
for a client that shows you only text. Times are ISO 8601 UTC. command_catalog tells what
a host allows and why it refused something. To fix something: list_pra_actions(host),
propose_pra_action (with your evidence as the rationale), then a human approves it outside
this server; only then does execute_pra_action run it, once; get_service_status confirms
the result."""


class ScopedServer(MCPServer):
    """tools/list shows a caller only the tools its token's scopes let it call (each
    tool's scope, declared with the tool, also refuses the call: toolcall._run)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tool_scopes: dict[str, str] = {}

    async def list_tools(self):
        caller = access.current()
        return [t for t in await super().list_tools()
                if caller.allows(self.tool_scopes[t.name])]


def build_server(open_state: StateFactory, runtime: Runtime | None = None,
                 **server_kwargs) -> MCPServer:
    """`open_state` makes the AppState when a session (stdio, HTTP, in-process) starts;
    `runtime` is where others (resources, the HTTP transport's /metrics) find it."""
    runtime = runtime or Runtime()

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

    mcp = ScopedServer("mcp-linux-infra", version=__version__, instructions=INSTRUCTIONS,
                    lifespan=lifespan, **server_kwargs)
    for module in tools.MODULES:
        for fn in tools.tools_of(module):
            mcp.add_tool(fn, title=fn.tool_title, annotations=fn.tool_annotations)
            registered = mcp._tool_manager.get_tool(fn.__name__)
            registered.parameters = compact(registered.parameters)
            registered.fn_metadata.output_schema = fn.tool_output
            mcp.tool_scopes[fn.__name__] = fn.tool_scope
    resources.register(mcp, runtime)
    return mcp
