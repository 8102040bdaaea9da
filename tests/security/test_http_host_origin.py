"""DNS rebinding against `serve --transport http`: a web page that points its own name at the
server's address still sends its own name in Host (and its own origin in Origin). On every
loopback spelling, with and without tokens, such a request gets 421/403 and no session; the
server's own address works with the SDK's client. Real server processes, raw HTTP probes."""

import http.client
import json
import os
import socket
import subprocess
from contextlib import ExitStack

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_support import make_estate, serve_http, tokens_file
from net_support import free_port
from paths_support import CLI

from mcp_linux_infra.errors import EXIT_CONFIG, UserError
from mcp_linux_infra.server.http import allowed_hosts_origins, check_bind
from mcp_linux_infra.settings import Settings
from mcp_linux_infra.tokens import LiveTokens

TOKEN = "rebind-test-token"
FOREIGN = "attacker.example"
INITIALIZE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "probe", "version": "1"}}})



def ipv6_loopback_missing() -> str | None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as error:
        return f"no IPv6 loopback here ({error.strerror})"
    return None


def require_bind(bind: str) -> None:
    reason = ipv6_loopback_missing() if ":" in bind else None
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {bind} cannot be bound: {reason}", pytrace=False)
    pytest.skip(reason)


def authority(bind: str, port: int) -> str:
    return f"[{bind}]:{port}" if ":" in bind else f"{bind}:{port}"


class Served:
    def __init__(self, bind, port, token):
        self.bind, self.port, self.token = bind, port, token
        self.own = authority(bind, port)

    def post(self, headers: dict[str, str], path: str = "/mcp"):
        """A raw POST of initialize with exactly these Host/Origin headers."""
        connection = http.client.HTTPConnection(self.bind, self.port, timeout=30)
        try:
            sent = {"Content-Type": "application/json",
                    "Accept": "application/json, text/event-stream", **headers}
            if self.token:
                sent["Authorization"] = f"Bearer {self.token}"
            connection.request("POST", path, body=INITIALIZE, headers=sent)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


@pytest.fixture
def serve(tmp_path):
    estate = make_estate(tmp_path, ["web-01"])
    with ExitStack() as running:
        def start(bind: str, token: str | None = None, allowed: str | None = None) -> Served:
            require_bind(bind)
            env = estate.env()
            if token:
                env.update(tokens_file(tmp_path / f"tokens-{bind}.json", {"t": (token, ["read"])}))
            if allowed:
                env["LINUX_MCP_HTTP_ALLOWED_HOSTS"] = allowed
            address, port = running.enter_context(
                serve_http(env, tmp_path, bind=bind, port=free_port(bind)))
            return Served(address, port, token)

        yield start
    estate.close()


LOOPBACK = [pytest.param(b, id=b) for b in ("127.0.0.1", "127.0.1.1", "::1", "localhost")]
FORGED = [
    pytest.param({"Host": FOREIGN}, 421, id="host"),
    pytest.param({"Host": "{foreign_port}"}, 421, id="host-with-port"),
    pytest.param({"Host": "{own}", "Origin": f"http://{FOREIGN}"}, 403, id="origin"),
    pytest.param({"Host": "{own}", "Origin": "http://{foreign_port}"}, 403,
                 id="origin-with-port"),
    pytest.param({"Host": "{own}", "Origin": "null"}, 403, id="origin-null"),
    pytest.param({"Host": "{own}", "Origin": "https://{own}"}, 403, id="origin-other-scheme"),
]


def fill(headers: dict[str, str], served: Served) -> dict[str, str]:
    return {k: v.format(own=served.own, foreign_port=f"{FOREIGN}:{served.port}")
            for k, v in headers.items()}


@pytest.mark.parametrize("token", [pytest.param(None, id="tokenless"),
                                   pytest.param(TOKEN, id="tokens")])
@pytest.mark.parametrize("bind", LOOPBACK)
def test_forged_host_or_origin_is_refused_on_every_loopback_bind(serve, bind, token):
    served = serve(bind, token)
    for headers, expected in [(p.values[0], p.values[1]) for p in FORGED]:
        sent = fill(headers, served)
        status, response_headers, body = served.post(sent)
        assert status == expected, (sent, status, body)
        assert "mcp-session-id" not in {k.lower() for k in response_headers}, sent
    status, response_headers, _ = served.post({"Host": served.own,
                                               "Origin": f"http://{served.own}"})
    assert status == 200
    assert "mcp-session-id" in {k.lower() for k in response_headers}


@pytest.mark.anyio
@pytest.mark.parametrize("bind", LOOPBACK)
async def test_the_sdk_client_works_on_the_bind_address(serve, bind):
    served = serve(bind)
    url = f"http://{served.own}/mcp"
    http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
    async with http, Client(streamable_http_client(url, http_client=http),
                            mode="legacy") as client:
        hosts = await client.call_tool("list_hosts", {"format": "json"})
        assert [h["name"] for h in hosts.structured_content["hosts"]] == ["web-01"]


def test_every_path_is_checked(serve):
    served = serve("127.0.1.1", TOKEN)
    for path in ("/mcp", "/.well-known/oauth-protected-resource/mcp", "/anything"):
        status, _, _ = served.post({"Host": FOREIGN}, path=path)
        assert status == 421, path


def test_configured_names_on_a_wildcard_bind(serve):
    served = serve("0.0.0.0", TOKEN, allowed="mcp.test,proxy.test:443")
    assert served.post({"Host": f"mcp.test:{served.port}"})[0] == 200
    assert served.post({"Host": f"mcp.test:{served.port}",
                        "Origin": f"https://mcp.test:{served.port}"})[0] == 200
    assert served.post({"Host": "proxy.test", "Origin": "https://proxy.test"})[0] == 200
    for forged in ({"Host": FOREIGN}, {"Host": f"0.0.0.0:{served.port}"},
                   {"Host": f"127.0.0.1:{served.port}"}, {"Host": "mcp.test"},
                   {"Host": f"mcp.test:{served.port}", "Origin": f"http://{FOREIGN}"}):
        assert served.post(forged)[0] in (421, 403), forged


@pytest.mark.parametrize("bind,names,hosts,origins", [
    pytest.param("127.0.0.1", [], ["127.0.0.1:8765", "localhost:8765"],
                 ["http://127.0.0.1:8765", "http://localhost:8765"], id="ipv4-loopback"),
    pytest.param("127.0.1.1", [], ["127.0.1.1:8765", "localhost:8765"],
                 ["http://127.0.1.1:8765", "http://localhost:8765"], id="debian-hostname"),
    pytest.param("0:0::1", [], ["[::1]:8765", "localhost:8765"],
                 ["http://[::1]:8765", "http://localhost:8765"], id="ipv6-loopback"),
    pytest.param("LocalHost", [], ["localhost:8765"], ["http://localhost:8765"], id="localhost"),
    pytest.param("192.0.2.7", [], ["192.0.2.7:8765"], ["http://192.0.2.7:8765"],
                 id="no-localhost-off-loopback"),
    pytest.param("0.0.0.0", ["Mcp.Test", "[2001:db8::1]:443"],
                 ["[2001:db8::1]", "[2001:db8::1]:443", "mcp.test:8765"],
                 ["http://[2001:db8::1]:443", "http://mcp.test:8765", "https://[2001:db8::1]",
                  "https://[2001:db8::1]:443", "https://mcp.test:8765"], id="wildcard-names"),
])
def test_allowed_hosts_and_origins_are_exact(bind, names, hosts, origins):
    assert allowed_hosts_origins(bind, 8765, names) == (hosts, origins)


@pytest.mark.parametrize("value", ["*", "*.example.com", "mcp.test:*", "http://mcp.test",
                                   "mcp.test/path", "::1", "[::1", "mcp.test:0"])
def test_allowed_hosts_setting_refuses_patterns(value):
    with pytest.raises(ValueError):
        Settings(http_allowed_hosts=value)


def test_wildcard_bind_needs_names(tmp_path):
    tokens_file(tmp_path / "tokens.json", {"t": (TOKEN, ["read"])})
    with pytest.raises(UserError, match="wildcard"):
        check_bind("0.0.0.0", 8765, Settings(), LiveTokens(tmp_path / "tokens.json"))


def test_a_bad_name_is_one_clear_line(tmp_path):
    done = subprocess.run([CLI, "serve", "--transport", "http"], cwd=tmp_path, text=True,
                          env=dict(os.environ, LINUX_MCP_HTTP_ALLOWED_HOSTS="*.example.com"),
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "LINUX_MCP_HTTP_ALLOWED_HOSTS" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
