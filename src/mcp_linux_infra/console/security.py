"""The console's outer rules: response headers (a strict CSP, no sniffing, no referrer, no
caching), the Host check, who the client is (X-Forwarded-* only from configured proxies),
rate limits, and the bind rule (a non-loopback bind needs TLS unless explicitly allowed)."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from mcp_linux_infra.errors import EXIT_CONFIG, UserError
from mcp_linux_infra.settings import Settings

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
# group: (burst, refills per minute) for each client address
LIMITS = {"login": (10, 10.0), "enroll": (10, 10.0), "approve": (20, 30.0)}
MAX_CLIENTS = 10000


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings, bind: str) -> None:
    """Refuse to serve a non-loopback address in plaintext unless the operator said so."""
    if is_loopback(bind) or settings.console_tls_cert is not None:
        return
    if not settings.console_allow_plaintext:
        raise UserError(f"console_plaintext_bind: refusing to serve {bind} without TLS: "
                        "session cookies and approvals would cross the network in clear",
                        hint="set LINUX_MCP_CONSOLE_TLS_CERT and LINUX_MCP_CONSOLE_TLS_KEY, "
                             "or bind 127.0.0.1 behind a TLS proxy, or (a proxy on a trusted "
                             "network) LINUX_MCP_CONSOLE_ALLOW_PLAINTEXT=true",
                        exit_code=EXIT_CONFIG)


def check_rp_id(settings: Settings) -> None:
    """Browsers refuse WebAuthn for an IP address: the console needs a host name."""
    try:
        ipaddress.ip_address(settings.console_rp_id)
    except ValueError:
        return
    raise UserError(f"console_rp_id_is_ip: the WebAuthn RP ID {settings.console_rp_id} is an "
                    "IP address, which browsers refuse",
                    hint="set LINUX_MCP_CONSOLE_ORIGIN to a host name (http://localhost:PORT "
                         "on this machine), or LINUX_MCP_CONSOLE_RP_ID", exit_code=EXIT_CONFIG)


class SecurityHeaders:
    """ASGI middleware: the headers on every answer, errors and static files included."""

    def __init__(self, app):
        self.app = app
        self.raw = [(k.encode(), v.encode()) for k, v in HEADERS.items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        names = {k for k, _ in self.raw}

        async def with_headers(message):
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + self.raw}
            await send(message)

        await self.app(scope, receive, with_headers)


@dataclass(frozen=True)
class Client:
    address: str
    https: bool


def client_of(peer: str | None, headers, server_https: bool, trusted: frozenset[str]) -> Client:
    """The client's address and scheme; a proxy's X-Forwarded-For (its last hop) and
    X-Forwarded-Proto count only when the peer is a configured trusted proxy."""
    address = peer or "-"
    if address not in trusted:
        return Client(address, server_https)
    forwarded = headers.get("x-forwarded-for", "").split(",")[-1].strip()
    proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
    try:
        address = str(ipaddress.ip_address(forwarded)) if forwarded else address
    except ValueError:
        pass
    return Client(address, proto == "https" if proto in ("http", "https") else server_https)


class RateLimiter:
    """Token buckets per (group, client address); the least recently seen are forgotten
    past MAX_CLIENTS."""

    def __init__(self, limits: dict[str, tuple[int, float]] = LIMITS, clock=time.monotonic):
        self.limits = limits
        self.clock = clock
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, group: str, address: str) -> bool:
        burst, per_minute = self.limits[group]
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop((group, address), (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * per_minute / 60.0)
            allowed = tokens >= 1.0
            self._buckets[(group, address)] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
        return allowed
