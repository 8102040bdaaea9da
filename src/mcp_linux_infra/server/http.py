"""Streamable HTTP: bearer tokens stored hashed, scopes, a per-token rate limit.

Loopback by default. A non-loopback bind without tokens is refused: anyone who can reach
the port could otherwise read every host. Scopes: `read` to connect at all (every read-only
tool); `propose` for propose_pra_action and `execute` for execute_pra_action, which check
them themselves (server/tools_actions.py).
"""

import hashlib
import hmac
import ipaddress
import json
import math
import threading
import time

from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from mcp_linux_infra.errors import UserError
from mcp_linux_infra.settings import Settings, TokenSpec

REQUIRED_SCOPES = ["read"]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
            header = dict(scope.get("headers") or []).get(b"authorization", b"").decode(
                "latin-1")
            scheme, _, token = header.partition(" ")
            bucket = self.buckets.get(token_hash(token.strip())) \
                if scheme.lower() == "bearer" else None
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


def auth_kwargs(settings: Settings, host: str, port: int) -> dict:
    """MCPServer keywords for auth, or {} when serving loopback without tokens."""
    if not settings.http_tokens:
        if not is_loopback(host):
            raise UserError(f"refusing to serve {host}:{port} without bearer tokens",
                            hint="set LINUX_MCP_HTTP_TOKENS (mcp-linux-infra tokens new NAME), "
                                 "or bind 127.0.0.1")
        return {}
    return {"token_verifier": HashedTokenVerifier(settings.http_tokens),
            "auth": AuthSettings(issuer_url="https://auth.invalid",
                                 resource_server_url=f"http://{host}:{port}/mcp",
                                 required_scopes=REQUIRED_SCOPES,
                                 validate_token_resource=False)}


def asgi_app(mcp, settings: Settings, host: str):
    """The streamable HTTP app behind the per-token rate limit."""
    security = None if is_loopback(host) else TransportSecuritySettings(
        enable_dns_rebinding_protection=False)  # bearer tokens are not ambient credentials
    app = mcp.streamable_http_app(host=host, transport_security=security)
    return RateLimit(app, settings.http_tokens, settings.rate_limit_per_minute,
                     settings.rate_limit_burst)
