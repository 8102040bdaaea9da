"""The approval store (schema 2): the state machine and its history, one document that every
approver signs, approvals checked with ssh-keygen against each operator's registered key, the
two-person rule, every refusal by its code, events, expiry, two processes at once, and the
in-place migration of a real schema-1 file. Each test that takes `store` runs on SQLite and
on PostgreSQL (conftest's `database_url`)."""

import json
import sqlite3
import subprocess
import sys
import time

import pytest
from mcp_infra_target.actions import approval as target_approval
from paths_support import REPO
from sshsig_support import UP, UV, Ed25519SecurityKey

from mcp_linux_infra.approvals.document import build_v1, build_v2, canonical
from mcp_linux_infra.approvals.store import (
    NEXT,
    STATES,
    ApprovalRefused,
    ApprovalStore,
    StateConflict,
    UnknownProposal,
)
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.database import open_database
from mcp_linux_infra.operators.registry import Registry

SCHEMA_1 = REPO / "tests/data/approvals-schema1.sql"


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
def database(database_url, tmp_path):
    """`database(name)`: a connection to the test's store database (SQLite or PostgreSQL)."""
    return lambda name: open_database(database_url, tmp_path, "approvals.sqlite3", name)


@pytest.fixture
def operators(database, keys):
    """The operators registry of the store's database, with alice and bob (ed25519 keys)."""
    reg = Registry(database("operators"))
    reg.add("alice", keys.public("alice"))
    reg.add("bob", keys.public("bob"))
    return reg


@pytest.fixture
def store(database, lines, operators):
    s = ApprovalStore(database("approvals"), Audit(None, lines), pending_ttl=3600,
                      operators=operators)
    yield s
    s.close()


def propose(store, required=1, **kw):
    args = {"host": "web-01", "action": "restart_service", "params": {"unit": "nginx"},
            "rationale": "nginx is down", "max_window": 3600, "required": required}
    args.update(kw)
    return store.create(**args)


def sign(keys, p, who="alice"):
    return keys.sign(p.document_text.encode(), who)


def approve(store, keys, p, who=("alice",), ttl=600, now=None):
    """`who` sign the proposal's document (prepared now, or at `now`)."""
    p = store.prepare_document(p.id, ttl, now=now)
    for name in who:
        p = store.add_approval(p.id, name, sign(keys, p, name), "cli", now=now)
    return p


def refused(code, call, *args, **kw):
    with pytest.raises(ApprovalRefused) as err:
        call(*args, **kw)
    assert err.value.code == code, err.value
    return err.value


def test_the_whole_way_each_change_in_the_history_and_the_audit(store, keys, lines):
    p = propose(store)
    assert p.state == "pending" and p.params == {"unit": "nginx"} and p.approvals == []
    assert p.document_text is None and p.required == 1 and p.count() == "0 of 1 approvals"
    p = approve(store, keys, p)
    assert p.state == "approved" and p.principals == ["alice"]
    assert p.approvals[0]["method"] == "cli" and p.approvals[0]["key_type"] == "ssh-ed25519"
    p = store.transition(p.id, "executing", "model:local", executor="me", sent_at=1.0)
    p = store.transition(p.id, "succeeded", "model:local", executor=None,
                         result={"outcome": "changed"}, note="run succeeded")
    assert (p.state, p.result, p.executor, p.note) == ("succeeded", {"outcome": "changed"},
                                                        None, "run succeeded")
    history = store.history(p.id)
    assert [(t["event"], t["from_state"], t["to_state"]) for t in history] == [
        ("created", None, "pending"), ("document_prepared", "pending", "pending"),
        ("approval_added", "pending", "pending"), ("approved", "pending", "approved"),
        ("executing", "approved", "executing"), ("succeeded", "executing", "succeeded")]
    assert [t["actor"] for t in history] == ["model", "store", "operator:alice",
                                             "operator:alice", "model:local", "model:local"]
    audited = [r for r in lines.records if r.get("proposal") == p.id]
    assert [(r["event"], r["to_state"]) for r in audited] == [
        ("proposal_transition", "pending"), ("document_prepared", "pending"),
        ("approval_added", "pending"), ("proposal_transition", "approved"),
        ("proposal_transition", "executing"), ("proposal_transition", "succeeded")]
    assert audited[0]["params"] == {"unit": "nginx"} and audited[0]["host"] == "web-01"


def test_two_operators_make_a_two_person_approval(store, keys):
    events = []
    store.subscribe(lambda event, p: events.append((event, p.state, p.count())))
    p = approve(store, keys, propose(store, required=2))
    assert p.state == "pending" and p.count() == "1 of 2 approvals"
    first = p.document_text
    p = store.prepare_document(p.id, 60)  # a second approver gets the same bytes
    assert p.document_text == first and p.principals == ["alice"]
    p = store.add_approval(p.id, "bob", sign(keys, p, "bob"), "webauthn")
    assert p.state == "approved" and p.principals == ["alice", "bob"]
    assert [a["method"] for a in p.approvals] == ["cli", "webauthn"]
    assert events == [("created", "pending", "0 of 2 approvals"),
                      ("approval_added", "pending", "1 of 2 approvals"),
                      ("approval_added", "approved", "2 of 2 approvals"),
                      ("approved", "approved", "2 of 2 approvals")]
    assert len(store.signatures(p.id)) == 2
    doc = json.loads(p.document_text)
    assert doc["approvals"] == 2 and doc["v"] == 2 and doc["id"] == p.id
    notes = [t["note"] for t in store.history(p.id) if t["event"] == "approval_added"]
    assert notes == ["alice (cli, ssh-ed25519): 1 of 2 approvals",
                     "bob (webauthn, ssh-ed25519): 2 of 2 approvals"]


def test_the_same_operator_twice_is_refused(store, keys):
    p = approve(store, keys, propose(store, required=2))
    error = refused("already_approved", store.add_approval, p.id, "alice", sign(keys, p), "cli")
    assert "1 of 2 approvals" in error.text
    assert store.get(p.id).principals == ["alice"] and len(store.signatures(p.id)) == 1


def test_a_signature_is_checked_against_the_operators_registered_key(store, keys, operators):
    p = store.prepare_document(propose(store).id, 600)
    # alice's key, claimed as bob's approval
    error = refused("bad_signature", store.add_approval, p.id, "bob", sign(keys, p), "cli")
    assert "not made with bob's registered key" in error.text
    # alice's key over other bytes
    other = keys.sign(p.document_text.replace("nginx", "cron").encode(), "alice")
    error = refused("bad_signature", store.add_approval, p.id, "alice", other, "cli")
    assert "ssh-keygen -Y verify refused it" in error.text
    # another namespace, and no signature at all
    wrong_ns = keys.sign(p.document_text.encode(), "alice", namespace="file")
    assert "namespace" in refused("bad_signature", store.add_approval, p.id, "alice", wrong_ns,
                                  "cli").text
    refused("bad_signature", store.add_approval, p.id, "alice", "not a signature", "cli")
    # someone the registry does not know, or no longer trusts
    refused("unknown_operator", store.add_approval, p.id, "mallory", sign(keys, p), "cli")
    operators.revoke("bob")
    refused("operator_revoked", store.add_approval, p.id, "bob", sign(keys, p, "bob"), "cli")
    after = store.get(p.id)
    assert after.state == "pending" and after.approvals == [] and store.signatures(p.id) == []
    assert [t["event"] for t in store.history(p.id)] == ["created", "document_prepared"]


def test_a_security_key_signature_is_taken_with_its_key_type(store, operators):
    token = Ed25519SecurityKey()
    operators.add("carol", token.public_line())
    p = store.prepare_document(propose(store).id, 600)
    p = store.add_approval(p.id, "carol", token.sign(p.document_text.encode(), UP | UV), "cli")
    assert p.state == "approved"
    assert p.approvals[0]["key_type"] == "sk-ssh-ed25519@openssh.com"


def test_only_a_pending_proposal_with_an_open_document_takes_approvals(store, keys):
    p = propose(store)
    refused("document_changed", store.add_approval, p.id, "alice", "x", "cli")
    done = approve(store, keys, p)
    error = refused("not_pending", store.add_approval, done.id, "bob", sign(keys, done, "bob"),
                    "cli")
    assert "is approved" in error.text
    refused("not_pending", store.prepare_document, done.id, 600)
    rejected = store.reject(propose(store).id, "alice", "not now")
    assert rejected.state == "rejected" and rejected.reason == "not now"
    refused("not_pending", store.prepare_document, rejected.id, 600)


def test_a_document_is_replaced_only_when_its_window_closed_dropping_its_approvals(
        store, keys, lines):
    start = time.time() - 120
    p = approve(store, keys, propose(store, required=2), ttl=60, now=start)
    old = p.document_text
    assert store.prepare_document(p.id, 600, now=start + 30).document_text == old
    # the window closed: bob cannot add to it, and a new document replaces it
    error = refused("document_changed", store.add_approval, p.id, "bob", sign(keys, p, "bob"),
                    "cli")
    assert "no open approval document" in error.text
    p = store.prepare_document(p.id, 600)
    assert p.document_text != old and p.approvals == [] and store.signatures(p.id) == []
    assert json.loads(p.document_text)["steps"][0]["nonce"] != json.loads(old)["steps"][0][
        "nonce"]
    dropped = [t for t in store.history(p.id) if t["event"] == "approvals_dropped"]
    assert len(dropped) == 1 and "dropped the approvals of alice" in dropped[0]["note"]
    assert next(r for r in lines.records if r["event"] == "approvals_dropped")["proposal"] == p.id
    # an approval of the old document does not count for the new one
    stale = keys.sign(old.encode(), "bob")
    refused("bad_signature", store.add_approval, p.id, "bob", stale, "cli")
    p = store.add_approval(p.id, "alice", sign(keys, p), "cli")
    assert p.count() == "1 of 2 approvals"


def test_the_window_is_capped_at_the_hosts_max_window(store):
    p = store.prepare_document(propose(store, max_window=900).id, 7200)
    doc = json.loads(p.document_text)
    assert doc["not_after"] - doc["not_before"] == 900
    assert (p.not_before, p.not_after) == (doc["not_before"], doc["not_after"])


def test_the_document_is_what_the_target_parses_as_canonical(store, keys):
    p = approve(store, keys, propose(store, required=3, params={"unit": "nginx",
                                                                "mode": "é ü"}), who=())
    doc = json.loads(p.document_text)
    assert canonical(doc) == p.document_text
    assert target_approval.parse_document(p.document_text) == doc
    step = doc["steps"][0]
    assert doc == build_v2(p.id, [step], p.not_before, p.not_after, 3)
    assert step == {"host": "web-01", "action": "restart_service",
                    "params": {"unit": "nginx", "mode": "é ü"}, "nonce": p.nonce}
    assert target_approval.FIELD_RES["nonce"].match(p.nonce) and not p.nonce.startswith("-")


@pytest.mark.parametrize(("change", "reason"), [
    pytest.param({"approvals": 0}, "approvals", id="no-approvals"),
    pytest.param({"approvals": 10}, "approvals", id="ten-approvals"),
    pytest.param({"not_before": 1.5}, "not_before", id="float-time"),
    pytest.param({"steps": []}, "steps", id="no-steps"),
    pytest.param({"id": "-p1"}, "id", id="bad-id"),
])
def test_build_v2_refuses_what_the_target_would(change, reason):
    args = {"id": "p1", "steps": [{"host": "h", "action": "a", "params": {},
                                   "nonce": "0" * 32}],
            "not_before": 10, "not_after": 20, "approvals": 1}
    args.update(change)
    with pytest.raises(ValueError, match=reason):
        build_v2(**args)


def test_required_is_one_to_nine_and_a_window_at_least_a_second(store):
    for bad in (0, 10, True):
        with pytest.raises(ValueError):
            propose(store, required=bad)
    with pytest.raises(ValueError, match="at least one second"):
        store.prepare_document(propose(store).id, 0)


@pytest.mark.parametrize("start, to", [
    ("pending", "executing"), ("pending", "succeeded"), ("rejected", "approved"),
    ("expired", "approved"), ("succeeded", "executing"), ("failed", "approved"),
    ("already-satisfied", "executing"), ("approved", "pending")])
def test_forbidden_moves_change_nothing(store, keys, lines, start, to):
    p = propose(store)
    path = {"pending": [], "rejected": ["rejected"], "expired": ["expired"],
            "approved": ["approved"], "succeeded": ["approved", "executing", "succeeded"],
            "failed": ["approved", "executing", "failed"],
            "already-satisfied": ["approved", "executing", "already-satisfied"]}[start]
    for state in path:
        p = approve(store, keys, p) if state == "approved" else store.transition(p.id, state,
                                                                                  "t")
    before, audited = store.history(p.id), len(lines.records)
    with pytest.raises(StateConflict, match=f"is {start}; it cannot become {to}"):
        store.transition(p.id, to, "t")
    assert store.get(p.id).state == start
    assert store.history(p.id) == before and len(lines.records) == audited


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
        store.transition(p.id, "rejected", "operator:alice",
                         expect={"state": "pending", "params": {"unit": "cron"}})
    assert store.get(p.id).state == "pending"


def test_unknown_proposal(store):
    with pytest.raises(UnknownProposal):
        store.get("p00000000")
    with pytest.raises(UnknownProposal):
        store.transition("p00000000", "approved", "t")
    with pytest.raises(UnknownProposal):
        store.prepare_document("p00000000", 600)
    with pytest.raises(UnknownProposal):
        store.add_approval("p00000000", "alice", "x", "cli")


def test_expiry_of_pending_and_of_approved_past_their_window(store, keys, lines):
    old = propose(store)
    fresh = propose(store)
    approved = approve(store, keys, propose(store), ttl=10, now=time.time() - 60)
    running = store.transition(approve(store, keys, propose(store), ttl=10,
                                       now=time.time() - 60).id, "executing", "t")
    expired = store.expire_due(now=time.time() + 1800)
    assert expired == [approved.id]
    expired = store.expire_due(now=time.time() + 4000)
    assert set(expired) == {old.id, fresh.id}
    assert store.get(running.id).state == "executing"  # its owner decides, not the clock
    notes = {r["proposal"]: r["note"] for r in lines.records if r.get("to_state") == "expired"}
    assert "window closed" in notes[approved.id] and "not approved" in notes[old.id]
    assert store.history(old.id)[-1]["actor"] == "clock"


def test_a_subscriber_that_fails_is_audited_and_changes_nothing(store, keys, lines):
    def broken(event, p):
        raise RuntimeError("queue gone")
    store.subscribe(broken)
    p = approve(store, keys, propose(store))
    assert p.state == "approved"
    failed = [r for r in lines.records if r["event"] == "subscriber_failed"]
    assert [r["notification"] for r in failed] == ["created", "approval_added", "approved"]
    assert {r["error"] for r in failed} == {"RuntimeError: queue gone"}


def test_find_filters_and_orders_newest_first(store):
    a = propose(store, host="web-01")
    b = propose(store, host="web-02")
    store.reject(a.id, "alice", "no")
    assert [p.id for p in store.find()] == [b.id, a.id]
    assert [p.id for p in store.find(state="rejected")] == [a.id]
    assert [p.id for p in store.find(host="web-02")] == [b.id]
    assert store.get(a.id).reason == "no"
    assert store.history(a.id)[-1]["actor"] == "operator:alice"


def test_no_signature_in_a_proposal_or_its_public_view(store, keys):
    p = approve(store, keys, propose(store))
    view = p.public()
    assert "BEGIN SSH SIGNATURE" not in json.dumps(view) + repr(p)
    assert view["approvals_count"] == "1 of 1 approvals" and "document_text" not in view
    assert store.signatures(p.id)[0].startswith("-----BEGIN SSH SIGNATURE-----")


def test_a_store_without_the_registry_takes_no_approval(tmp_path, keys):
    s = ApprovalStore(tmp_path / "approvals.sqlite3")
    p = s.prepare_document(propose(s).id, 600)
    error = refused("unknown_operator", s.add_approval, p.id, "alice", sign(keys, p), "cli")
    assert "'alice' is not a registered operator" in error.text
    s.close()


def test_the_file_is_wal_and_survives_reopening(tmp_path):
    path = tmp_path / "a.sqlite3"
    s = ApprovalStore(path)
    p = propose(s)
    s.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    db.close()
    again = ApprovalStore(path)
    assert again.get(p.id).state == "pending"
    again.close()


# -- schema 1, as main wrote it, migrated in place ------------------------------------------
def schema_1(path):
    """A store file as the schema-1 code left it (tests/data/approvals-schema1.sql: the
    dump of a file that code made: pending, approved, succeeded and rejected proposals)."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_1.read_text())
    db.close()


def test_a_schema_1_file_is_migrated_in_place(tmp_path, lines, keys):
    path = tmp_path / "approvals.sqlite3"
    schema_1(path)
    # what main put beside schema 1 before this version: the operators registry's tables
    # and the notifications' cursor; both are left as they are
    registry = Registry(path)
    registry.add("alice", keys.public("alice"))
    registry.close()
    before = sqlite3.connect(path)
    before.executescript("CREATE TABLE notify_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), "
                         "seq INTEGER NOT NULL); INSERT INTO notify_cursor VALUES (1, 5);")
    old = {r[0]: r for r in before.execute("SELECT id, state, host, action, params, rationale, "
                                           "nonce, not_before, not_after, approver, signature, "
                                           "note, result FROM proposals")}
    old_history = before.execute("SELECT seq, proposal, at, from_state, to_state, actor, "
                                 "trace, note FROM transitions ORDER BY seq").fetchall()
    before.close()
    s = ApprovalStore(path, Audit(None, lines))
    assert {p.id for p in s.find()} == set(old)
    for pid, (_, state, host, action, params, rationale, nonce, nb, na, approver, signature,
              note, result) in old.items():
        p = s.get(pid)
        assert (p.state, p.host, p.action, p.params, p.rationale, p.nonce, p.not_before,
                p.not_after, p.note, p.required) == (state, host, action, json.loads(params),
                                                     rationale, nonce, nb, na, note, 1)
        assert p.result == (json.loads(result) if result else None)
        if signature is None:
            assert p.document_text is None and p.approvals == []
            continue
        # a v1 approval signed before the upgrade: its document and its one signature
        assert p.document_text == canonical(build_v1(pid, host, action, json.loads(params),
                                                     nonce, nb, na, approver))
        assert target_approval.parse_document(p.document_text)["approver"] == approver
        assert p.principals == [approver] and p.approvals[0]["key_type"] == "ssh-ed25519"
        assert s.signatures(pid) == [signature]
    history = [(pid, t["at"], t["from_state"], t["to_state"], t["actor"], t["trace"], t["note"])
               for pid in old for t in s.history(pid)]
    assert sorted(history) == sorted(tuple(h[1:]) for h in old_history)
    assert {t["event"] for pid in old for t in s.history(pid)} <= set(STATES) | {"created"}
    s.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"proposals", "approvals", "transitions"} <= tables
    assert not [t for t in tables if t.endswith("_v1")]
    # the same sequence numbers: a notifications cursor still points where it did
    assert db.execute("SELECT seq, proposal, at, from_state, to_state, actor, trace, note "
                      "FROM transitions ORDER BY seq").fetchall() == old_history
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert "approver" not in [r[1] for r in db.execute("PRAGMA table_info(proposals)")]
    assert db.execute("SELECT seq FROM notify_cursor").fetchall() == [(5,)]
    db.close()
    assert Registry(path).get("alice").public_key == keys.public("alice")
    again = ApprovalStore(path)  # opening it again changes nothing
    assert {p.id: p for p in again.find()}.keys() == old.keys()
    again.close()


def test_a_migrated_file_takes_new_proposals_and_approvals(tmp_path, keys, operators):
    path = tmp_path / "approvals.sqlite3"
    schema_1(path)
    s = ApprovalStore(path, operators=operators)
    p = approve(s, keys, propose(s, required=2), who=("alice", "bob"))
    assert p.state == "approved" and json.loads(p.document_text)["v"] == 2
    s.close()


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "approvals.sqlite3"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 7")
    db.close()
    with pytest.raises(RuntimeError, match="schema 7 is newer"):
        ApprovalStore(path)


_OPEN = """
import sys, time
from pathlib import Path
from mcp_linux_infra.database import open_database
def database(name):  # argv[1]: the PostgreSQL URL, or "" for the SQLite file in argv[-1]
    return open_database(sys.argv[1] or None, Path(sys.argv[-1]), "approvals.sqlite3", name)
"""
_RACER = _OPEN + """
from mcp_linux_infra.approvals.store import ApprovalStore, StateConflict
store = ApprovalStore(database("approvals"))
while time.time() < float(sys.argv[3]):
    pass
try:
    store.transition(sys.argv[2], "executing", "racer", expect={"state": "approved"})
    print("won")
except StateConflict:
    print("lost")
"""


def test_two_processes_race_for_one_execution_and_one_wins(store, keys, tmp_path,
                                                          database_url):
    p = approve(store, keys, propose(store))
    start = str(time.time() + 1.5)
    racers = [subprocess.Popen([sys.executable, "-c", _RACER, database_url or "", p.id, start,
                                str(tmp_path)], stdout=subprocess.PIPE, text=True)
              for _ in range(6)]
    answers = sorted(r.communicate(timeout=60)[0].strip() for r in racers)
    assert answers == ["lost"] * 5 + ["won"]
    assert [t["to_state"] for t in store.history(p.id)].count("executing") == 1


_APPROVER = _OPEN + """
from mcp_linux_infra.approvals.store import ApprovalRefused, ApprovalStore
from mcp_linux_infra.operators.registry import Registry
store = ApprovalStore(database("approvals"), operators=Registry(database("operators")))
signature = Path(sys.argv[4]).read_text()
while time.time() < float(sys.argv[5]):
    pass
try:
    print(store.add_approval(sys.argv[2], sys.argv[3], signature, "cli").state)
except ApprovalRefused as refused:
    print(refused.code)
"""


def test_operators_approving_at_once_in_three_processes(store, keys, tmp_path, database_url):
    """alice twice and bob, at the same moment, on a two-person proposal: two approvals,
    one already_approved, and the proposal approved once."""
    p = store.prepare_document(propose(store, required=2).id, 600)
    for name in ("alice", "bob"):
        (tmp_path / f"{name}.sig").write_text(sign(keys, p, name))
    start = str(time.time() + 1.5)
    racers = [subprocess.Popen([sys.executable, "-c", _APPROVER, database_url or "", p.id, name,
                                str(tmp_path / f"{name}.sig"), start, str(tmp_path)],
                               stdout=subprocess.PIPE, text=True)
              for name in ("alice", "alice", "bob")]
    answers = sorted(r.communicate(timeout=60)[0].strip() for r in racers)
    assert answers == ["already_approved", "approved", "pending"]
    done = store.get(p.id)
    assert done.state == "approved" and done.principals in (["alice", "bob"], ["bob", "alice"])
    assert [t["event"] for t in store.history(p.id)].count("approved") == 1
