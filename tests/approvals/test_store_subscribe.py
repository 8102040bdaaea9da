"""`ApprovalStore.subscribe`: each committed change calls back once, after its commit, with
the event and the proposal as committed; a refused change calls nothing; a callback that
raises is audited and never reaches the change's caller (nor the other callbacks)."""

import time

import pytest
from webhook_support import AuditLines

from mcp_linux_infra.approvals.document import new_nonce
from mcp_linux_infra.approvals.store import ApprovalStore, StateConflict


@pytest.fixture
def lines():
    return AuditLines()


@pytest.fixture
def store(tmp_path, lines):
    s = ApprovalStore(tmp_path / "approvals.sqlite3", lines.audit(), pending_ttl=3600)
    yield s
    s.close()


def propose(store):
    return store.create("web-01", "restart_service", {"unit": "nginx"}, "nginx is down", 3600)


def test_each_committed_change_calls_back_once_after_its_commit(store, tmp_path):
    seen = []

    def callback(event, proposal):
        # committed before the call: another connection already sees it
        other = ApprovalStore(tmp_path / "approvals.sqlite3")
        try:
            seen.append((event, proposal.id, proposal.state, other.get(proposal.id).state))
        finally:
            other.close()
    store.subscribe(callback)
    p = propose(store)
    now = int(time.time())
    store.transition(p.id, "approved", "operator:alice", expect={"state": "pending"},
                     nonce=new_nonce(), not_before=now, not_after=now + 60)
    store.transition(p.id, "executing", "model:local", executor="me", sent_at=1.0)
    store.transition(p.id, "succeeded", "model:local", note="run succeeded")
    assert seen == [("created", p.id, "pending", "pending"),
                    ("approved", p.id, "approved", "approved"),
                    ("executing", p.id, "executing", "executing"),
                    ("succeeded", p.id, "succeeded", "succeeded")]


def test_refused_changes_call_nothing_and_expiry_calls_once(store):
    seen = []
    p = propose(store)
    store.subscribe(lambda event, proposal: seen.append((event, proposal.id)))
    with pytest.raises(StateConflict):
        store.transition(p.id, "succeeded", "model:local")
    with pytest.raises(StateConflict):
        store.transition(p.id, "approved", "operator:alice", expect={"state": "approved"})
    assert seen == []
    assert store.expire_due(now=time.time() + 7200) == [p.id]
    assert store.expire_due(now=time.time() + 7200) == []
    assert seen == [("expired", p.id)]
    assert store.get(p.id).note == "not approved within the proposal lifetime"


def test_a_raising_callback_is_audited_and_never_raised(store, lines):
    after = []

    def broken(event, proposal):
        raise RuntimeError(f"receiver table is gone ({event})")
    store.subscribe(broken)
    store.subscribe(lambda event, proposal: after.append(event))
    p = propose(store)  # returns normally
    assert p.state == "pending" and store.get(p.id).state == "pending"
    rejected = store.transition(p.id, "rejected", "operator:alice", reason="no")
    assert rejected.state == "rejected"
    assert after == ["created", "rejected"]  # the next callback still ran, each time
    failed = lines.named("subscriber_failed")
    assert [(r["notification"], r["proposal"], r["error"]) for r in failed] == [
        ("created", p.id, "RuntimeError: receiver table is gone (created)"),
        ("rejected", p.id, "RuntimeError: receiver table is gone (rejected)")]
    assert all(r["level"] == "error" for r in failed)
