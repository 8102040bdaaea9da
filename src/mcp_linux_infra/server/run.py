"""`mcp-linux-infra serve`: stdio for Claude Desktop, or streamable HTTP with tokens."""

import sys

from mcp_linux_infra.database import check_reachable
from mcp_linux_infra.server.app import build_server
from mcp_linux_infra.server.http import asgi_app, auth_kwargs, endpoint
from mcp_linux_infra.server.state import AppState, Runtime
from mcp_linux_infra.settings import Settings


def serve(settings: Settings, transport: str, host: str, port: int) -> int:
    def open_state() -> AppState:
        return AppState.open(settings)

    check_reachable(settings.database_url)
    if transport == "stdio":
        build_server(open_state).run("stdio")
        return 0
    import uvicorn

    runtime = Runtime()
    mcp = build_server(open_state, runtime, **auth_kwargs(settings, host, port))
    if not settings.http_tokens:
        print(f"mcp-linux-infra: serving {endpoint(host, port)} WITHOUT authentication "
              "(loopback only; set LINUX_MCP_HTTP_TOKENS to require tokens)", file=sys.stderr)
    uvicorn.run(asgi_app(mcp, runtime, settings, host, port), host=host, port=port,
                log_level="warning")
    return 0
