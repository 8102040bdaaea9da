"""What lives as long as the server (server/state.py): the inventory, read again when one
of its files changes; the expiry sweep."""

import time

import pytest
from mcp import Client
from mcp_support import data
from webhook_support import AuditLines, Receiver

from mcp_linux_infra.approvals.store import ApprovalStore
from mcp_linux_infra.notify.notifier import Notifier
from mcp_linux_infra.server.announce import Announcer
from mcp_linux_infra.server.state import ExpirySweep
from mcp_linux_infra.settings import Settings


@pytest.mark.anyio
async def test_inventory_changes_are_picked_up_without_a_restart(estate):
    e = estate()
    inventory = e.settings.inventory[0]
    async with Client(e.server()) as client:
        assert len((await data(client, "list_hosts", check=False))["hosts"]) == 2
        port = e.hosts["web-01"].port
        inventory.write_text(inventory.read_text()
                             + f"[db]\ndb-01 ansible_host=127.0.0.1 ansible_port={port}\n")
        hosts = await data(client, "list_hosts", host="db")
        assert [(h["name"], h["reachable"]) for h in hosts["hosts"]] == [("db-01", True)]
        assert hosts["groups"] == {"db": 1, "web": 2}


def test_the_expiry_sweep_expires_what_is_due_and_it_is_announced(tmp_path):
    """Driven by the sweep's injected clock (a day ahead), not by waiting for a proposal to
    age; the `expired` event reaches a real receiver through the announcer."""
    receiver, lines = Receiver(), AuditLines()
    store = ApprovalStore(tmp_path / "approvals.sqlite3", lines.audit(), pending_ttl=3600)
    notifier = Notifier(Settings(_env_file=None, webhooks=[{"url": receiver.url()}]),
                        lines.audit())
    announcer = Announcer(store, notifier.notify, lines.audit(), 3600, horizon=86400)
    fresh = store.create("web-01", "restart_service", {"unit": "nginx"}, "down", 3600)
    sweep = ExpirySweep(store, 0.01, lines.audit(), clock=lambda: time.time() + 7200)
    try:
        created, expired = receiver.wait(2)
        assert (created["event"], expired["event"]) == ("created", "expired")
        assert expired["proposal"]["id"] == fresh.id
        assert expired["proposal"]["state"] == "expired"
        assert expired["proposal"]["note"] == "not approved within the proposal lifetime"
        assert [t["actor"] for t in store.history(fresh.id)] == ["model", "clock"]
    finally:
        sweep.close()
        announcer.close()
        notifier.close()
        store.close()
        receiver.close()


def test_a_failing_sweep_is_audited_and_the_sweep_goes_on(tmp_path):
    lines = AuditLines()
    store = ApprovalStore(tmp_path / "approvals.sqlite3")
    store.close()  # every sweep now fails
    sweep = ExpirySweep(store, 0.01, lines.audit())
    try:
        failures = lines.wait("expiry_sweep_failed", 2)
        assert failures[0]["error"].startswith("ProgrammingError: ")
        assert sweep.alive()
    finally:
        sweep.close()
    assert not sweep.alive()
