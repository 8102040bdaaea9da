"""`/metrics` of `serve --transport http`: a real server process, real MCP calls through the
SDK's HTTP client, then a scrape parsed with prometheus_client's own text parser. Counts
move as the calls did, refusals are counted by reason, nothing the client sends becomes a
label, and only a token with the `metrics` scope may scrape. Proposals and webhooks are read
at scrape time: checked on an in-process state, against a real webhook receiver."""

import re

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_support import refused, serve_http, tokens_file
from paths_support import REPO
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from webhook_support import BLOCK, AuditLines, Receiver

from mcp_linux_infra.approvals.store import STATES
from mcp_linux_infra.server.metrics import BY, OTHER, OUTCOMES, REASONS, TARGET_REASONS, closed
from mcp_linux_infra.server.state import AppState
from mcp_linux_infra.settings import WebhookSpec

TOKENS = {"model": ("m0del-token", ["read"]), "proposer": ("pr0pose-token", ["read", "propose"]),
          "scraper": ("scrape-token", ["metrics"])}
HOSTILE = "EVIL\x1b[31m\u202e"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of an exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def served(estate, tmp_path):
    e = estate()
    env = e.env(**tokens_file(tmp_path / "tokens.json", TOKENS),
                LINUX_MCP_RATE_LIMIT_BURST="100")
    with serve_http(env, tmp_path) as (_, port):
        yield e, f"http://127.0.0.1:{port}"


async def scrape(base: str, token: str | None = TOKENS["scraper"][0]) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.get(f"{base}/metrics", headers=headers)


def model_client(base: str, token: str = "model"):
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKENS[token][0]}"},
                              timeout=httpx2.Timeout(30, read=60))
    return http, Client(streamable_http_client(f"{base}/mcp", http_client=http))


@pytest.mark.anyio
async def test_only_a_metrics_token_scrapes(served):
    _, base = served
    none = await scrape(base, None)
    assert none.status_code == 401 and "Bearer" in none.headers["www-authenticate"]
    assert (await scrape(base, "not-a-token")).status_code == 401
    model = await scrape(base, TOKENS["model"][0])
    assert model.status_code == 403 and "insufficient_scope" in model.text
    ok = await scrape(base)
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
    assert not [k for k in samples(ok.text) if k[0] == "mcp_linux_infra_tool_calls_total"]
    async with httpx2.AsyncClient(timeout=30) as http:  # the scraper's token reads no tool
        initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}
        mcp = await http.post(f"{base}/mcp", json=initialize, headers={
            "Accept": "application/json, text/event-stream",
            "Authorization": f"Bearer {TOKENS['scraper'][0]}"})
        assert mcp.status_code == 403
        assert (await http.post(f"{base}/metrics", headers={
            "Authorization": f"Bearer {TOKENS['scraper'][0]}"})).status_code == 405


@pytest.mark.anyio
async def test_calls_refusals_and_hosts_are_counted_with_closed_labels(served):
    e, base = served
    http, client = model_client(base)
    async with http, client:
        await client.call_tool("list_hosts", {"format": "json"})
        await client.call_tool("list_hosts", {"format": "json"})
        text = await refused(client, "run_diagnostic", host="web-01", command="nc -z x 1")
        assert "unknown_command" in text
        text = await refused(client, "propose_pra_action", host="web-01",
                             action="restart_service", params={"unit": "nginx"},
                             rationale="nginx is down since the upgrade")
        assert "'propose' scope" in text
        await refused(client, "run_diagnostic", host=HOSTILE, command="uptime")
        await refused(client, f"no_such_tool_{HOSTILE}", host="web-01")
    http, client = model_client(base, "proposer")
    async with http, client:
        text = await refused(client, "propose_pra_action", host="web-01",
                             action="restart_service", params={"unit": "nginx"},
                             rationale=f"nginx is down {HOSTILE}")
        assert "control_char" in text
        e.hosts["web-02"].stop()
        await refused(client, "run_diagnostic", host="web-02", command="uptime")
    response = await scrape(base)
    scraped = samples(response.text)

    calls = "mcp_linux_infra_tool_calls_total"
    assert value(scraped, calls, tool="list_hosts", outcome="ok") == 2
    assert value(scraped, calls, tool="run_diagnostic", outcome="refused") == 1
    assert value(scraped, calls, tool="propose_pra_action", outcome="refused") == 2
    assert value(scraped, calls, tool="run_diagnostic", outcome="error") == 1  # unknown host
    assert value(scraped, calls, tool="run_diagnostic", outcome="unreachable") == 1
    assert value(scraped, "mcp_linux_infra_tool_call_duration_seconds_count",
                 tool="run_diagnostic") == 3
    assert value(scraped, "mcp_linux_infra_tool_call_duration_seconds_bucket",
                 tool="list_hosts", le="+Inf") == 2
    refusals = "mcp_linux_infra_refusals_total"
    assert value(scraped, refusals, reason="unknown_command", by="target") == 1
    assert value(scraped, refusals, reason="missing_scope", by="server") == 1
    assert value(scraped, refusals, reason="control_char", by="server") == 1
    assert value(scraped, "mcp_linux_infra_host_reachable", host="web-01") == 1
    assert value(scraped, "mcp_linux_infra_host_reachable", host="web-02") == 0
    assert value(scraped, "mcp_linux_infra_hosts_reachable") == 1
    assert value(scraped, "mcp_linux_infra_inventory_hosts") == 2
    assert all(value(scraped, "mcp_linux_infra_proposals", state=s) == 0 for s in STATES)

    assert "EVIL" not in response.text and "no_such_tool" not in response.text
    tools = {t.name for t in (await _tools(base))}
    allowed = {"tool": tools, "outcome": OUTCOMES, "reason": REASONS | {OTHER}, "by": BY,
               "state": set(STATES), "host": {"web-01", "web-02"}}
    for name, labels in scraped:
        for key, label in labels:
            if key != "le":
                assert label in allowed[key], (name, key, label)


async def _tools(base: str):
    http, client = model_client(base, "proposer")
    async with http, client:
        return (await client.list_tools()).tools


def test_proposals_and_webhooks_are_read_when_scraped(estate, tmp_path):
    """The store's proposals by state, and a webhook's deliveries, failures and drops, on an
    in-process state (the receiver answers 500 once, then 200; one attempt each)."""
    receiver = Receiver(script=[500])
    lines = AuditLines()
    e = estate(webhooks=[WebhookSpec(url=receiver.url())], webhook_attempts=1,
               webhook_poll_interval=0.05)
    state = AppState.open(e.settings, audit=lines.audit(e.settings.audit_log))
    try:
        first = state.approvals.create("web-01", "restart_service", {"unit": "nginx"},
                                       "nginx is down", max_window=900)
        state.approvals.create("web-02", "restart_service", {"unit": "nginx"},
                               "nginx is down", max_window=900)
        state.approvals.reject(first.id, "alice", "not now")
        lines.wait("webhook_failed")
        lines.wait("webhook_delivered", 2)
        scraped = samples(generate_latest(state.metrics.registry).decode())
    finally:
        state.close()
        receiver.close()
    assert value(scraped, "mcp_linux_infra_proposals", state="pending") == 1
    assert value(scraped, "mcp_linux_infra_proposals", state="rejected") == 1
    assert value(scraped, "mcp_linux_infra_proposals", state="approved") == 0
    deliveries = "mcp_linux_infra_webhook_deliveries_total"
    assert value(scraped, deliveries, webhook="0", outcome="failed") == 1
    assert value(scraped, deliveries, webhook="0", outcome="delivered") == 2
    assert value(scraped, "mcp_linux_infra_webhook_drops_total", webhook="0",
                 reason="queue_full") == 0


def test_a_dropped_webhook_event_is_counted(estate):
    """One event held by the receiver, a queue of one: of the next two, one is dropped."""
    receiver = Receiver(script=[BLOCK])
    lines = AuditLines()
    e = estate(webhooks=[WebhookSpec(url=receiver.url())], webhook_queue_size=1,
               webhook_poll_interval=0.05)
    state = AppState.open(e.settings, audit=lines.audit(e.settings.audit_log))
    try:
        def propose(host):
            state.approvals.create(host, "restart_service", {"unit": "nginx"},
                                   "nginx is down", max_window=900)
        propose("web-01")
        receiver.wait(1)  # the worker holds the first event
        propose("web-02")
        propose("web-01")
        lines.wait("webhook_dropped")
        scraped = samples(generate_latest(state.metrics.registry).decode())
    finally:
        receiver.release.set()
        state.close()
        receiver.close()
    assert value(scraped, "mcp_linux_infra_webhook_drops_total", webhook="0",
                 reason="queue_full") == 1
    assert value(scraped, "mcp_linux_infra_webhook_queue_length", webhook="0") == 1


def test_the_reason_labels_are_the_documented_reasons():
    """A target's reason outside system/README.md's list is counted as `other`: the list
    here must be that list, or a real reason would be hidden (or a stale one kept)."""
    section = (REPO / "system/README.md").read_text().split("\n## Refusal reasons\n", 1)[1]
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", section.split("\n## ", 1)[0],
                                re.MULTILINE))
    assert TARGET_REASONS == documented
    assert closed("bad_value", REASONS) == "bad_value"
    assert closed(HOSTILE, REASONS) == closed(None, REASONS) == OTHER


@pytest.mark.anyio
async def test_without_tokens_loopback_scrapes_and_the_host_check_still_applies(estate,
                                                                              tmp_path):
    with serve_http(estate().env(), tmp_path) as (_, port):
        base = f"http://127.0.0.1:{port}"
        assert (await scrape(base, None)).status_code == 200
        async with httpx2.AsyncClient(timeout=30) as http:
            forged = await http.get(f"{base}/metrics", headers={"Host": "attacker.example"})
        assert forged.status_code == 421
