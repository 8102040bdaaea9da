"""Streamable HTTP: bearer tokens stored hashed, scopes, a per-token rate limit, and the
Host/Origin check against DNS rebinding.

Loopback by default. A non-loopback bind without tokens is refused: anyone who can reach
the port could otherwise read every host. Scopes: `read` to connect at all (every read-only
tool); `propose` for propose_pra_action and `execute` for execute_pra_action, which check
them themselves (server/tools/actions.py); `metrics` to scrape `/metrics` (MetricsEndpoint),
and nothing else: a scraper's token (Prometheus keeps it in a file on its own host) cannot
call a tool, and a model's token cannot read the metrics.

Every request, on every bind and every path, must name this server in its Host header (and
in its Origin header, when it has one): the exact bind address and port, `localhost` on a
loopback bind, or a name the operator configured (`LINUX_MCP_HTTP_ALLOWED_HOSTS`). A web page
that rebinds its own name to this address still sends its own name, so it gets 421 and no
session. This never relies on the SDK's defaults, which cover only some loopback spellings.
"""

import hashlib
import hmac
import ipaddress
import json
import math
import socket
import threading
import time

import anyio
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mcp_linux_infra.errors import UserError
from mcp_linux_infra.settings import Settings, TokenSpec, split_allowed_host

REQUIRED_SCOPES = ["read"]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """An IP literal on loopback, or a name whose every address is (`localhost`)."""
    address = _ip(host)
    if address is not None:
        return address.is_loopback
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return False
    addresses = [_ip(a.split("%")[0]) for a in found]
    return bool(addresses) and all(a is not None and a.is_loopback for a in addresses)


def endpoint(host: str, port: int) -> str:
    """The server's URL for a bind."""
    return f"http://{_name(host)}:{port}/mcp"


def _name(host: str) -> str:
    """How a URL spells `host`: lower case, an IPv6 literal compressed and in brackets."""
    address = _ip(host)
    if address is None:
        return host.lower()
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def _forms(name: str, port: int, schemes: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """The Host and Origin values a client sends for `name` and `port` (a browser leaves the
    scheme's default port out)."""
    hosts, origins = {f"{name}:{port}"}, set()
    for scheme, default in (("http", 80), ("https", 443)):
        if scheme in schemes:
            origins.add(f"{scheme}://{name}:{port}")
            if port == default:
                hosts.add(name)
                origins.add(f"{scheme}://{name}")
    return hosts, origins


def allowed_hosts_origins(host: str, port: int, names: list[str]) -> tuple[list[str], list[str]]:
    """Exact Host and Origin values this server accepts: the bind (`host:port`, not a wildcard
    address), `localhost:port` on a loopback bind, and the configured `names` (`NAME` on the
    bind port or `NAME:PORT`; with http and https origins, for a TLS proxy in front)."""
    hosts: set[str] = set()
    origins: set[str] = set()
    address = _ip(host)
    candidates = []
    if address is None or not address.is_unspecified:
        candidates.append((_name(host), port, ("http",)))
    if is_loopback(host):
        candidates.append(("localhost", port, ("http",)))
    for entry in names:
        name, entry_port = split_allowed_host(entry)
        candidates.append((_name(name), entry_port or port, ("http", "https")))
    for name, entry_port, schemes in candidates:
        more_hosts, more_origins = _forms(name, entry_port, schemes)
        hosts |= more_hosts
        origins |= more_origins
    return sorted(hosts), sorted(origins)


class HostOriginCheck:
    """ASGI middleware in front of everything: a Host outside `hosts` gets 421, an Origin
    outside `origins` 403 (a request without Origin, from a client that is not a browser,
    passes on its Host alone). Exact strings: no wildcard, no prefix."""

    def __init__(self, app, hosts: list[str], origins: list[str]):
        self.app = app
        self.hosts = frozenset(hosts)
        self.origins = frozenset(origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            headers: dict[bytes, list[bytes]] = {}
            for key, value in scope.get("headers") or []:
                headers.setdefault(key.lower(), []).append(value)
            host = headers.get(b"host", [])
            origin = headers.get(b"origin", [])
            refusal = None
            if len(host) != 1 or host[0].decode("latin-1") not in self.hosts:
                refusal = (421, "host_not_allowed")
            elif len(origin) > 1 or (origin and origin[0].decode("latin-1") not in self.origins):
                refusal = (403, "origin_not_allowed")
            if refusal is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                status, error = refusal
                body = json.dumps({"error": error, "hint": "the server accepts only its own "
                                   "address and LINUX_MCP_HTTP_ALLOWED_HOSTS"}).encode()
                await send({"type": "http.response.start", "status": status, "headers": [
                    (b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class HashedTokenVerifier(TokenVerifier):
    """Checks a presented token against the stored SHA-256 hashes (constant-time compare)."""

    def __init__(self, tokens: list[TokenSpec]):
        self.tokens = tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        digest = token_hash(token)
        match = None
        for spec in self.tokens:
            if hmac.compare_digest(digest, spec.sha256):
                match = spec
        if match is None:
            return None
        return AccessToken(token=token, client_id=match.name, scopes=list(match.scopes))


def bearer(scope) -> str | None:
    """The token of a request's `Authorization: Bearer TOKEN` header, or None."""
    header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class TokenBucket:
    def __init__(self, per_minute: float, burst: int):
        self.rate = per_minute / 60.0
        self.capacity = float(burst)
        self.level = float(burst)
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        """0 if a request may pass now, else the seconds until one may."""
        with self.lock:
            now = time.monotonic()
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.level >= 1:
                self.level -= 1
                return 0.0
            return (1 - self.level) / self.rate


class RateLimit:
    """ASGI middleware: each configured token has its own bucket; over it, HTTP 429."""

    def __init__(self, app, tokens: list[TokenSpec], per_minute: float, burst: int):
        self.app = app
        self.buckets = {t.sha256: TokenBucket(per_minute, burst) for t in tokens}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            token = bearer(scope)
            bucket = self.buckets.get(token_hash(token)) if token is not None else None
            wait = bucket.take() if bucket else 0.0
            if wait:
                body = json.dumps({"error": "rate_limited",
                                   "retry_after_s": math.ceil(wait)}).encode()
                await send({"type": "http.response.start", "status": 429, "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", str(math.ceil(wait)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class MetricsEndpoint:
    """ASGI: `GET /metrics` answered here, from the running state's registry; every other
    request goes on to `app`. With tokens configured, a bearer token with the `metrics`
    scope is required (401 without a known token, 403 without the scope); without tokens
    the server is loopback-only (auth_kwargs), like its MCP endpoint."""

    PATH = "/metrics"

    def __init__(self, app, runtime, tokens: list[TokenSpec]):
        self.app = app
        self.runtime = runtime
        self.verifier = HashedTokenVerifier(tokens) if tokens else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != self.PATH:
            await self.app(scope, receive, send)
            return
        status, headers, body = await self._answer(scope)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if scope["method"] not in ("GET", "HEAD"):
            return _error(405, "method_not_allowed", [(b"allow", b"GET, HEAD")])
        if self.verifier is not None:
            token = bearer(scope)
            access = await self.verifier.verify_token(token) if token is not None else None
            if access is None:
                return _error(401, "invalid_token",
                              [(b"www-authenticate", b'Bearer scope="metrics"')])
            if "metrics" not in access.scopes:
                return _error(403, "insufficient_scope",
                              [(b"www-authenticate",
                                b'Bearer error="insufficient_scope", scope="metrics"')])
        state = self.runtime.state
        if state is None:
            return _error(503, "not_started", [])
        text = await anyio.to_thread.run_sync(generate_latest, state.metrics.registry)
        body = b"" if scope["method"] == "HEAD" else text
        return 200, [(b"content-type", CONTENT_TYPE_LATEST.encode())], body


def _error(status: int, error: str, headers: list[tuple[bytes, bytes]]):
    return status, [(b"content-type", b"application/json"), *headers], json.dumps(
        {"error": error}).encode()


def auth_kwargs(settings: Settings, host: str, port: int) -> dict:
    """MCPServer keywords for auth, or {} when serving loopback without tokens (the
    Host/Origin check of `asgi_app` is on for every bind)."""
    if not settings.http_tokens:
        if not is_loopback(host):
            raise UserError(f"refusing to serve {host}:{port} without bearer tokens",
                            hint="set LINUX_MCP_HTTP_TOKENS (mcp-linux-infra tokens new NAME), "
                                 "or bind 127.0.0.1")
        return {}
    address = _ip(host)
    if address is not None and address.is_unspecified and not settings.http_allowed_hosts:
        raise UserError(f"refusing to serve {host}:{port}: no Host header can name a wildcard "
                        "address, so every request would be refused",
                        hint="set LINUX_MCP_HTTP_ALLOWED_HOSTS to the names clients use")
    return {"token_verifier": HashedTokenVerifier(settings.http_tokens),
            "auth": AuthSettings(issuer_url="https://auth.invalid",
                                 resource_server_url=endpoint(host, port),
                                 required_scopes=REQUIRED_SCOPES,
                                 validate_token_resource=False)}


def asgi_app(mcp, runtime, settings: Settings, host: str, port: int):
    """The streamable HTTP app and `/metrics` (of `runtime`'s state) behind the per-token
    rate limit, behind the Host/Origin check. The SDK gets the same exact lists, so its own
    check agrees instead of using defaults."""
    hosts, origins = allowed_hosts_origins(host, port, settings.http_allowed_hosts)
    security = TransportSecuritySettings(enable_dns_rebinding_protection=True,
                                         allowed_hosts=hosts, allowed_origins=origins)
    app = mcp.streamable_http_app(host=host, transport_security=security)
    app = MetricsEndpoint(app, runtime, settings.http_tokens)
    return HostOriginCheck(RateLimit(app, settings.http_tokens, settings.rate_limit_per_minute,
                                     settings.rate_limit_burst), hosts, origins)
