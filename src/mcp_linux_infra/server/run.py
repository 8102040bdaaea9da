"""`mcp-linux-infra serve`: stdio for Claude Desktop, or streamable HTTP with tokens (and
TLS), printing the one URL a client should use."""

import sys

from mcp_linux_infra.database import check_reachable
from mcp_linux_infra.server.app import build_server
from mcp_linux_infra.server.http import (
    HashedTokenVerifier,
    asgi_app,
    auth_kwargs,
    check_bind,
    check_tls,
    endpoint,
)
from mcp_linux_infra.server.state import AppState, Runtime
from mcp_linux_infra.settings import Settings, split_allowed_host
from mcp_linux_infra.tokens import LAST_USED, LastUsed, LiveTokens, read_tokens


def _warn(message: str) -> None:
    print(f"mcp-linux-infra: {message}", file=sys.stderr, flush=True)


def client_url(settings: Settings, host: str, port: int) -> str:
    """What a client puts in its config: the bind, or on a wildcard bind the first name
    clients are allowed to use."""
    if host in ("0.0.0.0", "::") and settings.http_allowed_hosts:
        name, own_port = split_allowed_host(settings.http_allowed_hosts[0])
        host, port = name, own_port or port
    return endpoint(host, port, settings.http_tls_cert is not None)


def serve(settings: Settings, transport: str, host: str, port: int) -> int:
    def open_state() -> AppState:
        return AppState.open(settings)

    check_reachable(settings.database_url)
    if transport == "stdio":
        build_server(open_state).run("stdio")
        return 0
    import uvicorn

    read_tokens(settings.tokens_file)  # a bad file is one line now, not a refusal per request
    tokens = LiveTokens(settings.tokens_file, report=_warn)
    check_bind(host, port, settings, tokens)
    tls = settings.http_tls_cert is not None
    if tls:
        check_tls(settings.http_tls_cert, settings.http_tls_key)
    last_used = LastUsed(settings.state_dir / LAST_USED, report=_warn) if tokens.required \
        else None
    verifier = HashedTokenVerifier(tokens, last_used) if tokens.required else None
    runtime = Runtime()
    mcp = build_server(open_state, runtime, **auth_kwargs(verifier))
    how = (f"bearer tokens of {settings.tokens_file}" if tokens.required else
           "WITHOUT authentication, loopback only; once `mcp-linux-infra tokens new NAME` "
           "made the tokens file, a restart requires tokens")
    _warn(f"serving {client_url(settings, host, port)} ({how})")
    try:
        uvicorn.run(asgi_app(mcp, runtime, settings, host, port, verifier), host=host,
                    port=port, log_level="warning",
                    ssl_certfile=str(settings.http_tls_cert) if tls else None,
                    ssl_keyfile=str(settings.http_tls_key) if tls else None)
    finally:
        if last_used is not None:
            last_used.close()
    return 0
