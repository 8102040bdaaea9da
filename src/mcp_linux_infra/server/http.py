"""Streamable HTTP: bearer tokens from the tokens file (stored hashed, read again when it
changes), scopes, a per-token rate limit, TLS, and the Host/Origin check against DNS
rebinding.

Loopback by default. A non-loopback bind without a tokens file is refused: anyone who can
reach the port could otherwise read every host. Once the tokens file exists, every request
needs one of its tokens (an empty file, after the last revoke, admits nobody). Scopes:
`read` to connect at all; each tool needs the scope declared with it (server/access.py:
propose_pra_action `propose`, execute_pra_action `execute`), which also hides it from
tools/list; `metrics` to scrape `/metrics` (MetricsEndpoint), and nothing else: a scraper's
token (Prometheus keeps it in a file on its own host) cannot call a tool, and a model's
token cannot read the metrics. A token limited to inventory groups sees only their hosts.

There is no OAuth here: no authorization server, so a 401 is a plain `WWW-Authenticate:
Bearer` challenge and no protected-resource metadata is published (a client that tries
OAuth first would otherwise start a login against nothing).

Every request, on every bind and every path, must name this server in its Host header (and
in its Origin header, when it has one): the exact bind address and port, `localhost` on a
loopback bind, or a name the operator configured (`LINUX_MCP_HTTP_ALLOWED_HOSTS`). A web page
that rebinds its own name to this address still sends its own name, so it gets 421 and no
session. This never relies on the SDK's defaults, which cover only some loopback spellings.
"""

import ipaddress
import json
import math
import socket
import ssl
import threading
import time
from pathlib import Path

import anyio
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mcp_linux_infra.errors import EXIT_CONFIG, EXIT_SYSTEM, UserError
from mcp_linux_infra.server.access import TeamToken
from mcp_linux_infra.settings import Settings, split_allowed_host
from mcp_linux_infra.tokens import LastUsed, LiveTokens, token_hash

REQUIRED_SCOPES = ["read"]


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


def endpoint(host: str, port: int, tls: bool = False) -> str:
    """The server's URL for a bind."""
    return f"{'https' if tls else 'http'}://{_name(host)}:{port}/mcp"


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


def allowed_hosts_origins(host: str, port: int, names: list[str],
                          tls: bool = False) -> tuple[list[str], list[str]]:
    """Exact Host and Origin values this server accepts: the bind (`host:port`, not a wildcard
    address), `localhost:port` on a loopback bind, and the configured `names` (`NAME` on the
    bind port or `NAME:PORT`; with http and https origins, for a TLS proxy in front)."""
    hosts: set[str] = set()
    origins: set[str] = set()
    address = _ip(host)
    candidates = []
    own = ("https",) if tls else ("http",)
    if address is None or not address.is_unspecified:
        candidates.append((_name(host), port, own))
    if is_loopback(host):
        candidates.append(("localhost", port, own))
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
    """Checks a presented token against the tokens file's SHA-256 hashes as the file is
    now (constant-time compare), and notes when each was used."""

    def __init__(self, tokens: LiveTokens, last_used: LastUsed | None = None):
        self.tokens = tokens
        self.last_used = last_used

    async def verify_token(self, token: str) -> TeamToken | None:
        match = self.tokens.find(token_hash(token))
        if match is None:
            return None
        if self.last_used is not None:
            self.last_used.note(match.sha256)
        return TeamToken(token=token, client_id=match.name, scopes=list(match.scopes),
                         groups=None if match.groups is None else list(match.groups))


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
    """ASGI middleware: each token of the file has its own bucket; over it, HTTP 429."""

    def __init__(self, app, tokens: LiveTokens | None, per_minute: float, burst: int):
        self.app = app
        self.tokens = tokens
        self.per_minute = per_minute
        self.burst = burst
        self.buckets: dict[str, TokenBucket] = {}
        self.lock = threading.Lock()

    def _bucket(self, token: str) -> TokenBucket | None:
        spec = self.tokens.find(token_hash(token)) if self.tokens is not None else None
        if spec is None:
            return None
        with self.lock:
            return self.buckets.setdefault(spec.sha256, TokenBucket(self.per_minute,
                                                                    self.burst))

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            token = bearer(scope)
            bucket = self._bucket(token) if token is not None else None
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

    def __init__(self, app, runtime, verifier: HashedTokenVerifier | None):
        self.app = app
        self.runtime = runtime
        self.verifier = verifier

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


def check_bind(host: str, port: int, settings: Settings, tokens: LiveTokens) -> None:
    """Refuse a bind that would serve everyone, or no one."""
    if not tokens.required:
        if not is_loopback(host):
            raise UserError(f"refusing to serve {host}:{port} without bearer tokens",
                            hint="make one with: mcp-linux-infra tokens new NAME, "
                                 "or bind 127.0.0.1")
        return
    address = _ip(host)
    if address is not None and address.is_unspecified and not settings.http_allowed_hosts:
        raise UserError(f"refusing to serve {host}:{port}: no Host header can name a wildcard "
                        "address, so every request would be refused",
                        hint="set LINUX_MCP_HTTP_ALLOWED_HOSTS to the names clients use")


def auth_kwargs(verifier: HashedTokenVerifier | None) -> dict:
    """MCPServer keywords for auth, or {} when serving loopback without tokens (the
    Host/Origin check of `asgi_app` is on for every bind). No resource_server_url: the
    SDK then publishes no protected-resource metadata and its 401 names none; `issuer_url`
    is a field the SDK's model requires, used only with an authorization server, which this
    server does not have, so it is never sent."""
    if verifier is None:
        return {}
    return {"token_verifier": verifier,
            "auth": AuthSettings(issuer_url="https://auth.invalid", resource_server_url=None,
                                 required_scopes=REQUIRED_SCOPES,
                                 validate_token_resource=False)}


def check_tls(cert: Path, key: Path) -> None:
    """The certificate and key load (as uvicorn will load them), or one line that says why
    not: exit 4 for a file that cannot be read, 3 for one that is not what it should be."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        raise UserError(f"LINUX_MCP_HTTP_TLS_CERT {cert} with LINUX_MCP_HTTP_TLS_KEY {key}: "
                        f"not a PEM certificate and its unencrypted private key "
                        f"({exc.reason or exc})", exit_code=EXIT_CONFIG) from None
    except OSError as exc:
        raise UserError(f"HTTP TLS file {exc.filename or cert}: {exc.strerror or exc}",
                        exit_code=EXIT_SYSTEM) from None


def asgi_app(mcp, runtime, settings: Settings, host: str, port: int,
             verifier: HashedTokenVerifier | None):
    """The streamable HTTP app and `/metrics` (of `runtime`'s state) behind the per-token
    rate limit, behind the Host/Origin check. The SDK gets the same exact lists, so its own
    check agrees instead of using defaults."""
    tls = settings.http_tls_cert is not None
    hosts, origins = allowed_hosts_origins(host, port, settings.http_allowed_hosts, tls)
    security = TransportSecuritySettings(enable_dns_rebinding_protection=True,
                                         allowed_hosts=hosts, allowed_origins=origins)
    app = mcp.streamable_http_app(host=host, transport_security=security)
    app = MetricsEndpoint(app, runtime, verifier)
    return HostOriginCheck(RateLimit(app, verifier.tokens if verifier else None,
                                     settings.rate_limit_per_minute,
                                     settings.rate_limit_burst), hosts, origins)
