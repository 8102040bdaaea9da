"""The approval store: the state machine, its audit trail, expiry, two processes at once,
and the document it stands for being the one the target accepts as canonical."""

import json
import sqlite3
import subprocess
import sys
import time

import pytest
from mcp_infra_target.actions import approval as target_approval

from mcp_linux_infra.approvals.document import build, canonical, new_nonce
from mcp_linux_infra.approvals.store import (
    NEXT,
    STATES,
    ApprovalStore,
    StateConflict,
    UnknownProposal,
)
from mcp_linux_infra.audit import Audit


class Lines:
    """A stream for Audit that keeps the records."""

    def __init__(self):
        self.records = []

    def write(self, text):
        self.records.extend(json.loads(t) for t in text.splitlines() if t)

    def flush(self):
        pass


@pytest.fixture
def lines():
    return Lines()


@pytest.fixture
def store(tmp_path, lines):
    s = ApprovalStore(tmp_path / "approvals.sqlite3", Audit(None, lines), pending_ttl=3600)
    yield s
    s.close()


def propose(store, **kw):
    args = {"host": "web-01", "action": "restart_service", "params": {"unit": "nginx"},
            "rationale": "nginx is down", "max_window": 3600}
    args.update(kw)
    return store.create(**args)


def approve(store, p, ttl=600, now=None):
    now = int(now or time.time())
    return store.transition(p.id, "approved", "operator:alice", expect={"state": "pending"},
                            approver="alice", nonce=new_nonce(), not_before=now,
                            not_after=now + ttl, signature="SIG")


def test_the_whole_way_each_step_a_transition_and_an_audit_line(store, lines):
    p = propose(store)
    assert p.state == "pending" and p.params == {"unit": "nginx"} and p.signature is None
    p = approve(store, p)
    p = store.transition(p.id, "executing", "model:local", executor="me", sent_at=1.0)
    p = store.transition(p.id, "succeeded", "model:local", executor=None,
                         result={"outcome": "changed"}, note="run succeeded")
    assert (p.state, p.result, p.executor, p.note) == ("succeeded", {"outcome": "changed"},
                                                        None, "run succeeded")
    history = store.transitions(p.id)
    assert [(t["from_state"], t["to_state"]) for t in history] == [
        (None, "pending"), ("pending", "approved"), ("approved", "executing"),
        ("executing", "succeeded")]
    assert [t["actor"] for t in history] == ["model", "operator:alice", "model:local",
                                             "model:local"]
    audited = [r for r in lines.records if r["event"] == "proposal_transition"]
    assert [(r["from_state"], r["to_state"]) for r in audited] == [
        (t["from_state"], t["to_state"]) for t in history]
    assert {r["proposal"] for r in audited} == {p.id}
    assert audited[0]["params"] == {"unit": "nginx"} and audited[0]["host"] == "web-01"


@pytest.mark.parametrize("start, to", [
    ("pending", "executing"), ("pending", "succeeded"), ("rejected", "approved"),
    ("expired", "approved"), ("succeeded", "executing"), ("failed", "approved"),
    ("already-satisfied", "executing"), ("approved", "pending")])
def test_forbidden_moves_change_nothing(store, lines, start, to):
    p = propose(store)
    path = {"pending": [], "rejected": ["rejected"], "expired": ["expired"],
            "approved": ["approved"], "succeeded": ["approved", "executing", "succeeded"],
            "failed": ["approved", "executing", "failed"],
            "already-satisfied": ["approved", "executing", "already-satisfied"]}[start]
    for state in path:
        p = approve(store, p) if state == "approved" else store.transition(p.id, state, "t")
    before, audited = store.transitions(p.id), len(lines.records)
    with pytest.raises(StateConflict, match=f"is {start}; it cannot become {to}"):
        store.transition(p.id, to, "t")
    assert store.get(p.id).state == start
    assert store.transitions(p.id) == before and len(lines.records) == audited


def test_every_state_is_reachable_and_the_final_ones_lead_nowhere():
    reachable, todo = set(), [None]
    while todo:
        for state in NEXT.get(todo.pop(), ()):
            if state not in reachable:
                reachable.add(state)
                todo.append(state)
    assert reachable == set(STATES)
    assert {s for s in STATES if s not in NEXT} == {"rejected", "expired", "succeeded",
                                                    "failed", "already-satisfied"}


def test_expect_guards_against_a_change_in_between(store):
    p = propose(store)
    with pytest.raises(StateConflict, match="changed meanwhile"):
        store.transition(p.id, "approved", "operator:alice",
                         expect={"state": "pending", "params": {"unit": "cron"}})
    assert store.get(p.id).state == "pending"


def test_unknown_proposal(store):
    with pytest.raises(UnknownProposal):
        store.get("p00000000")
    with pytest.raises(UnknownProposal):
        store.transition("p00000000", "approved", "t")


def test_expiry_of_pending_and_of_approved_past_their_window(store, lines):
    old = propose(store)
    fresh = propose(store)
    approved = approve(store, propose(store), ttl=10, now=time.time() - 60)
    running = store.transition(approve(store, propose(store), ttl=10, now=time.time() - 60).id,
                               "executing", "t")
    expired = store.expire_due(now=time.time() + 1800)
    assert expired == [approved.id]
    expired = store.expire_due(now=time.time() + 4000)
    assert set(expired) == {old.id, fresh.id}
    assert store.get(running.id).state == "executing"  # its owner decides, not the clock
    notes = {r["proposal"]: r["note"] for r in lines.records if r.get("to_state") == "expired"}
    assert "window closed" in notes[approved.id] and "not approved" in notes[old.id]
    assert store.transitions(old.id)[-1]["actor"] == "clock"


def test_find_filters_and_orders_newest_first(store):
    a = propose(store, host="web-01")
    b = propose(store, host="web-02")
    store.transition(a.id, "rejected", "operator:alice", reason="no")
    assert [p.id for p in store.find()] == [b.id, a.id]
    assert [p.id for p in store.find(state="rejected")] == [a.id]
    assert [p.id for p in store.find(host="web-02")] == [b.id]
    assert store.get(a.id).reason == "no"


def test_public_view_hides_the_signature(store):
    p = approve(store, propose(store))
    view = p.public()
    assert "signature" not in view and view["signed"] is True
    assert "SIG" not in json.dumps(view)


def test_the_file_is_wal_and_survives_reopening(tmp_path):
    path = tmp_path / "a.sqlite3"
    s = ApprovalStore(path)
    p = propose(s)
    s.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = ApprovalStore(path)
    assert again.get(p.id).state == "pending"
    again.close()


_RACER = """
import sys, time
from pathlib import Path
from mcp_linux_infra.approvals.store import ApprovalStore, StateConflict
store = ApprovalStore(Path(sys.argv[1]))
while time.time() < float(sys.argv[3]):
    pass
try:
    store.transition(sys.argv[2], "executing", "racer", expect={"state": "approved"})
    print("won")
except StateConflict:
    print("lost")
"""


def test_two_processes_race_for_one_execution_and_one_wins(tmp_path):
    path = tmp_path / "a.sqlite3"
    s = ApprovalStore(path)
    p = approve(s, propose(s))
    start = str(time.time() + 1.5)
    racers = [subprocess.Popen([sys.executable, "-c", _RACER, str(path), p.id, start],
                               stdout=subprocess.PIPE, text=True) for _ in range(6)]
    answers = sorted(r.communicate(timeout=60)[0].strip() for r in racers)
    assert answers == ["lost"] * 5 + ["won"]
    assert [t["to_state"] for t in s.transitions(p.id)].count("executing") == 1
    s.close()


def test_the_document_is_what_the_target_parses_as_canonical(store):
    p = approve(store, propose(store, params={"unit": "nginx", "é": "ü"}))
    text = canonical(p.document())
    doc = json.loads(text)
    assert set(doc) == target_approval.DOCUMENT_KEYS
    assert doc == build(p.id, "web-01", "restart_service", {"unit": "nginx", "é": "ü"},
                        p.nonce, p.not_before, p.not_after, "alice")
    # the target's own parser: canonical, and every field well-formed (except the param
    # name, which the target's syntax refuses: non-ASCII names are not params)
    plain = approve(store, propose(store))
    assert target_approval.parse_document(canonical(plain.document())) == plain.document()
    assert target_approval.FIELD_RES["nonce"].match(plain.nonce)
    assert not plain.nonce.startswith("-")
