"""End to end: `mcp-linux-infra serve` over stdio (a real process, as Claude Desktop starts
it) with LINUX_MCP_WEBHOOKS pointing at a real local receiver, proposing against the real
action tier (approval_support). A proposal's `created` event carries the console link; a
receiver that fails (500) and then hangs delays no tool answer. Asserted by what arrived in
which order, never by time."""

import json

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp_support import ok
from paths_support import CLI
from pra_support import HOST
from webhook_support import BLOCK, Receiver

from mcp_linux_infra.console_links import proposal_url
from mcp_linux_infra.settings import Settings

ORIGIN = "https://approve.example:8443"


@pytest.fixture
def receiver():
    r = Receiver([500, BLOCK])  # the first attempt fails, the retry hangs until released
    yield r
    r.close()


def propose(client, estate, name):
    return ok(client, "propose_pra_action", host=HOST, action="touch_file",
              params={"file": estate.root.file(name)}, rationale=f"the app needs the file {name}")


@pytest.mark.anyio
async def test_created_is_posted_with_the_console_link_and_never_delays_an_answer(
        action_estate, receiver, tmp_path):
    env = action_estate.env(
        LINUX_MCP_WEBHOOKS=json.dumps([{"url": receiver.url()}]),
        LINUX_MCP_CONSOLE_ORIGIN=ORIGIN, LINUX_MCP_WEBHOOK_BACKOFF="0.01",
        LINUX_MCP_WEBHOOK_TIMEOUT="300")  # a hung receiver stays hung for the whole test
    params = StdioServerParameters(command=CLI, args=["serve"], env=env, cwd=str(tmp_path))
    async with Client(params) as client:
        first = await propose(client, action_estate, "a")
        # the 500, then the retry, which the receiver now holds
        held = await anyio.to_thread.run_sync(receiver.wait, 2)
        assert [b["event"] for b in held] == ["created", "created"]
        second = await propose(client, action_estate, "b")  # answered while the receiver hangs
        assert second["state"] == "pending"
        assert len(receiver.requests) == 2 and not receiver.release.is_set()
        receiver.release.set()
        bodies = await anyio.to_thread.run_sync(receiver.wait, 3)
    assert [(b["event"], b["proposal"]["id"]) for b in bodies] == [
        ("created", first["proposal_id"]), ("created", first["proposal_id"]),
        ("created", second["proposal_id"])]
    console = Settings(_env_file=None, console_origin=ORIGIN)
    for body in bodies:
        assert body["link"] == proposal_url(console, body["proposal"]["id"])
        assert body["link"].startswith(f"{ORIGIN}/p/p")
    assert bodies[0]["proposal"]["rationale"] == "the app needs the file a"
    assert bodies[0]["proposal"]["host"] == HOST
    # lines the one worker wrote before the requests the receiver saw (a later line may still
    # be on its way when the server stops)
    audit = [json.loads(line) for line in action_estate.settings.audit_log.read_text()
             .splitlines()]
    retries = [r for r in audit if r["event"] == "webhook_retry"]
    assert [(r["proposal"], r["reason"], r["attempt"]) for r in retries] == [
        (first["proposal_id"], "HTTP 500", 1)]
    delivered = [r for r in audit if r["event"] == "webhook_delivered"]
    assert (delivered[0]["proposal"], delivered[0]["attempt"]) == (first["proposal_id"], 2)
    assert "SECRET-KEY" not in action_estate.settings.audit_log.read_text()
