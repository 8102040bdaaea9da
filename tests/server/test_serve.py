"""`mcp-linux-infra serve` as a real process: stdio the way Claude Desktop starts it, and
streamable HTTP with hashed bearer tokens, scopes and the rate limit."""

import json
import subprocess

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_support import serve_http, tokens_file
from net_support import free_port
from paths_support import CLI

from mcp_linux_infra.server.http import TokenBucket

TOKENS = {"reader": ("r3ad-token", ["read"]), "executor": ("x-token", ["execute"])}


@pytest.mark.anyio
async def test_stdio_like_claude_desktop(estate, tmp_path, mode):
    e = estate()
    params = StdioServerParameters(command=CLI, args=["serve"], env=e.env(),
                                   cwd=str(tmp_path))
    async with Client(params, mode=mode) as client:
        tools = (await client.list_tools()).tools
        assert len(tools) == 19  # 14 read-only, 5 for actions
        result = await client.call_tool("diagnose_system", {"host": "web"})
        report = result.structured_content
        assert report["summary"]["degraded"] == ["web-01", "web-02"]
        refused = await client.call_tool("run_diagnostic", {"host": "web-01",
                                                            "command": "nc -z x 1"})
        assert refused.is_error and "unknown_command" in refused.content[0].text
    audit = [json.loads(line) for line in e.settings.audit_log.read_text().splitlines()]
    calls = [r for r in audit if r["event"] == "tool_call"]
    assert [c["tool"] for c in calls] == ["diagnose_system", "run_diagnostic"]
    assert calls[1]["outcome"] == "error"



@pytest.fixture
def http_server(estate, tmp_path):
    env = estate().env(**tokens_file(tmp_path / "tokens.json", TOKENS),
                       LINUX_MCP_RATE_LIMIT_BURST="40")
    with serve_http(env, tmp_path) as (_, port):
        yield f"http://127.0.0.1:{port}/mcp"


def client_for(url: str, token: str | None, mode: str = "auto"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60))
    return http, Client(streamable_http_client(url, http_client=http), mode=mode)


@pytest.mark.anyio
async def test_http_tokens_scopes_and_rate_limit(http_server):
    async with httpx2.AsyncClient() as raw:
        initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}
        accept = {"Accept": "application/json, text/event-stream"}
        none = await raw.post(http_server, json=initialize, headers=accept)
        assert none.status_code == 401 and "Bearer" in none.headers["www-authenticate"]
        wrong = await raw.post(http_server, json=initialize,
                               headers={**accept, "Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        scope = await raw.post(http_server, json=initialize,
                               headers={**accept, "Authorization": "Bearer x-token"})
        assert scope.status_code == 403 and "insufficient_scope" in scope.text
    for mode in ("auto", "legacy"):
        http, client = client_for(http_server, "r3ad-token", mode)
        async with http, client:
            hosts = await client.call_tool("list_hosts", {"format": "json"})
            assert [h["reachable"] for h in hosts.structured_content["hosts"]] == [True, True]
    async with httpx2.AsyncClient() as raw:
        statuses = [(await raw.post(http_server, json=initialize, headers={
            **accept, "Authorization": "Bearer r3ad-token"})).status_code for _ in range(45)]
    assert 429 in statuses and statuses[0] == 200


def test_non_loopback_without_tokens_is_refused(estate, tmp_path):
    out = subprocess.run([CLI, "serve", "--transport", "http", "--host", "0.0.0.0",
                          "--port", str(free_port())], env=estate().env(),
                         cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 2
    assert "refusing to serve 0.0.0.0" in out.stderr and "tokens new" in out.stderr


def test_token_bucket():
    bucket = TokenBucket(per_minute=60, burst=2)
    assert bucket.take() == 0 and bucket.take() == 0
    wait = bucket.take()
    assert 0.9 < wait <= 1.0
