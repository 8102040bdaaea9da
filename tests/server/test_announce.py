"""The announcer (server/announce.py): every transition in the store's `transitions` table
announced once by the servers on that state directory, whoever made it: the server itself,
the operator CLI in its own process, or anyone while no server ran. Against a real local
receiver; the tests wait on its requests, nothing sleeps (the poll interval is short so that
another process's change is found soon, but every assertion is on what arrived). On SQLite
and on PostgreSQL (conftest's `database_url`)."""

import subprocess
import threading
from datetime import UTC, datetime

import pytest
from approval_support import make_action_estate
from paths_support import CLI
from pra_support import HOST
from webhook_support import AuditLines, Receiver

from mcp_linux_infra.approvals.store import ApprovalStore
from mcp_linux_infra.database import open_database
from mcp_linux_infra.notify.body import iso
from mcp_linux_infra.notify.events import EVENTS
from mcp_linux_infra.server.announce import Announcer
from mcp_linux_infra.server.state import AppState

POLL = 0.05


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def lines():
    return AuditLines()


@pytest.fixture
def world(tmp_path, keys, root, receiver, database_url):
    """target-1 with its real action tier, and settings whose one webhook is `receiver`,
    taking every event."""
    estate = make_action_estate(
        tmp_path, keys, root, webhooks=[{"url": receiver.url(), "events": list(EVENTS)}],
        webhook_poll_interval=POLL, webhook_backoff=0.01,
        console_origin="https://console.example", database_url=database_url)
    yield estate
    estate.close()


def open_store(world) -> ApprovalStore:
    """Another connection to the world's store (SQLite file or PostgreSQL database)."""
    s = world.settings
    return ApprovalStore(open_database(s.database_url, s.state_dir, "approvals.sqlite3",
                                       "approvals"))


@pytest.fixture
def servers(world, lines):
    """Open servers' states on `world`'s settings; each one left open is closed after."""
    opened = []

    def start() -> AppState:
        opened.append(AppState.open(world.settings, audit=lines.audit()))
        return opened[-1]
    yield start
    for state in opened:
        if state.announcer is not None and state.announcer.alive():
            state.close()


def propose(store, name):
    return store.create(HOST, "touch_file", {"file": name}, f"the file {name} is missing", 3600)


def events(receiver, count):
    return [(b["event"], b["proposal"]["id"], b["proposal"]["state"])
            for b in receiver.wait(count)]


def cli(world, *args):
    url = world.settings.database_url
    env = world.env(**({"LINUX_MCP_DATABASE_URL": url} if url else {}))
    done = subprocess.run([CLI, "approvals", *args], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120, check=False,
                          cwd=world.settings.state_dir.parent)
    assert done.returncode == 0, done.stderr
    return done


def test_changes_made_by_the_operator_cli_reach_the_servers_webhooks(world, servers,
                                                                     receiver, root):
    state = servers()
    first = propose(state.approvals, root.file("a"))
    second = propose(state.approvals, root.file("b"))
    cli(world, "approve", first.id, "--yes", "--ttl", "10m")  # another process
    cli(world, "reject", second.id, "--reason", "b is not needed")
    assert events(receiver, 5) == [("created", first.id, "pending"),
                                   ("created", second.id, "pending"),
                                   ("approval_added", first.id, "pending"),
                                   ("approved", first.id, "approved"),
                                   ("rejected", second.id, "rejected")]
    approved = receiver.requests[3]["body"]
    assert approved["proposal"]["approvals"] == {"have": 1, "need": 1, "by": ["alice"]}
    assert approved["link"] == f"https://console.example/p/{first.id}"
    assert receiver.requests[4]["body"]["proposal"]["reason"] == "b is not needed"
    # the CLI expires what is due whenever it opens the store: announced by the server too
    third = propose(state.approvals, root.file("c"))
    other = open_store(world)
    other.db.run("UPDATE proposals SET created_at = created_at - 2 * 86400 WHERE id = ?",
                 (third.id,))
    other.close()
    cli(world, "list")
    assert events(receiver, 7)[5:] == [("created", third.id, "pending"),
                                       ("expired", third.id, "expired")]
    state.close()  # what was queued went out before close returned
    assert len(receiver.requests) == 7


def test_two_servers_announce_each_transition_once(world, servers, receiver):
    one, two = servers(), servers()
    made = []
    for i in range(6):
        store = (one, two)[i % 2].approvals
        p = propose(store, f"/tmp/f{i}")
        made.append(("created", p.id, "pending"))
        if i % 3 == 0:
            store.transition(p.id, "rejected", "operator:alice", reason="no")
            made.append(("rejected", p.id, "rejected"))
    got = events(receiver, len(made))
    one.close()
    two.close()
    assert len(receiver.requests) == len(made)
    # each once; not in order: two events of one proposal taken by the two servers go out
    # through two queues (docs/NOTIFICATIONS.md)
    assert sorted(got) == sorted(made)


def test_what_happened_while_no_server_ran_is_announced_by_the_next(world, servers,
                                                                    receiver, lines):
    store = open_store(world)
    before = propose(store, "/tmp/before")  # no server ever ran here: history, not news
    servers().close()  # the first server marks where announcing starts
    during = propose(store, "/tmp/during")
    store.transition(during.id, "rejected", "operator:alice", reason="no")
    store.close()
    servers()
    assert events(receiver, 2) == [("created", during.id, "pending"),
                                   ("rejected", during.id, "rejected")]
    assert before.id not in repr(receiver.requests)
    store = open_store(world)
    happened = [iso(datetime.fromtimestamp(t["at"], UTC))
                for t in store.history(during.id)]
    store.close()
    assert [r["body"]["at"] for r in receiver.requests] == happened  # when, not when told


def test_a_transition_older_than_a_proposal_lifetime_is_skipped_and_counted(world, receiver,
                                                                           lines):
    store = open_store(world)
    seen = []
    announcer = Announcer(store, lambda e, p, at: seen.append((e, p.id)), lines.audit(), POLL,
                          horizon=3600, clock=lambda: 10.0 ** 10)  # far in the future
    try:
        propose(store, "/tmp/old")
        propose(store, "/tmp/older")
        with lines.cond:  # one line per batch claimed: the two may come in one or two
            assert lines.cond.wait_for(lambda: sum(
                r["count"] for r in lines.records if r["event"] == "announce_skipped_stale")
                == 2, 60)
        assert {r["older_than_s"] for r in lines.named("announce_skipped_stale")} == {3600}
        assert seen == []
    finally:
        announcer.close()
        store.close()


def test_a_failing_notify_is_audited_and_the_rest_still_announced(world, lines):
    store = open_store(world)
    seen = []
    done = threading.Condition()

    def notify(event, proposal, at):
        if proposal.params["file"] == "/tmp/bad":
            raise RuntimeError("broken body")
        with done:
            seen.append(proposal.params["file"])
            done.notify_all()
    announcer = Announcer(store, notify, lines.audit(), POLL, horizon=3600)
    try:
        bad = propose(store, "/tmp/bad")
        propose(store, "/tmp/good")
        [failed] = lines.wait("announce_failed")
        assert failed["proposal"] == bad.id and failed["error"] == "RuntimeError: broken body"
        with done:
            assert done.wait_for(lambda: seen == ["/tmp/good"], 60)
        assert announcer.alive()
    finally:
        announcer.close()
        store.close()


def test_a_server_without_webhooks_claims_nothing(tmp_path, keys, root):
    estate = make_action_estate(tmp_path, keys, root)
    state = AppState.open(estate.settings, audit=AuditLines().audit())
    try:
        assert state.announcer is None
    finally:
        state.close()
        estate.close()
