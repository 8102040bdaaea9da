"""Executing approvals against the real action tier (approval_support): exactly once, every
refusal recorded, lost answers and crashes reconciled from what the target recorded."""

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from approval_support import make_action_estate
from mcp_infra_target.actions import state as pra_state
from paths_support import REPO
from pra_support import HOST

from mcp_linux_infra.approvals.action_tier import ActionTier
from mcp_linux_infra.approvals.decide import approve
from mcp_linux_infra.approvals.executor import (
    Executor,
    NotExecutable,
    OutcomeUnknown,
    TargetRefused,
    owner_alive,
    owner_token,
)
from mcp_linux_infra.approvals.store import STATES, open_approvals
from mcp_linux_infra.inventory import load_inventory
from mcp_linux_infra.operators.registry import Registry
from mcp_linux_infra.ssh.pool import Pool

SLOW = {"slow_touch": {
    "description": "Wait for the test's gate (an flock), then touch the file.",
    "params": {"file": {"type": "path", "values": []}},
    "check": None, "run": [], "verify": ["/usr/bin/touch", "--", "{file}"],
    "idempotency_window_seconds": 300}}


class World:
    def __init__(self, estate):
        self.estate = estate
        self.root = estate.root
        self.settings = estate.settings
        self.operators = Registry(self.settings.state_dir / "approvals.sqlite3")
        self.store = open_approvals(self.settings, estate.audit(), self.operators)
        self.pool = Pool(self.settings)
        self.host = load_inventory(self.settings.inventory).hosts[HOST]
        self.executor = Executor(self.store, self.pool, "model:test", answer_floor=20)

    def propose(self, action="touch_file", file="a", required=None):
        catalog = ActionTier(self.pool, self.host).catalog()
        params = {"file": self.root.file(file)}
        catalog.check_params(action, params)
        info = {k: v for k, v in catalog.action(action).items() if k in ("steps", "runs_as")}
        return self.store.create(HOST, action, params, "the file is missing",
                                 catalog.max_window, action_info={**info,
                                                                  "settings": catalog.settings},
                                 required=required or catalog.required(action))

    def approve(self, p, who="alice", ttl=600):
        return approve(self.store, p.id, ttl, who, self.root.keys.dir / who)

    def approved(self, action="touch_file", file="a", ttl=600):
        return self.approve(self.propose(action, file), ttl=ttl)

    def execute(self, proposal_id):
        return self.executor.execute(proposal_id, self.host, trace="t-1")

    def attempts(self, nonce):
        return [r for r in self.root.log() if r.get("nonce") == nonce]

    def close(self):
        self.pool.close()
        self.store.close()
        self.operators.close()


@pytest.fixture
def world(tmp_path, keys, root):
    root.write_catalog(SLOW, settings={"lock_wait_seconds": 1})
    catalog = json.loads((root.path / "etc/mcp-infra/actions.json").read_text())
    catalog["actions"]["slow_touch"]["params"]["file"]["values"] = [root.file("a")]
    catalog["actions"]["slow_touch"]["run"] = ["/usr/bin/flock", root.file("gate"),
                                               "/usr/bin/true"]
    (root.path / "etc/mcp-infra/actions.json").write_text(json.dumps(catalog))
    estate = make_action_estate(tmp_path, keys, root)
    w = World(estate)
    yield w
    w.close()
    estate.close()


def test_an_approved_proposal_runs_once(world):
    p = world.approved()
    assert not os.path.exists(world.root.file("a"))
    done = world.execute(p.id)
    assert done.state == "succeeded" and done.result["outcome"] == "changed"
    assert done.result["proposal"] == p.id and done.result["trace"] == "t-1"
    assert os.path.exists(world.root.file("a")) and done.executor is None
    with pytest.raises(NotExecutable, match="already executed: succeeded.*works once"):
        world.execute(p.id)
    assert [r["outcome"] for r in world.attempts(p.nonce)] == ["changed"]
    assert [(t["event"], t["to_state"]) for t in world.store.history(p.id)] == [
        ("created", "pending"), ("document_prepared", "pending"), ("approval_added", "pending"),
        ("approved", "approved"), ("executing", "executing"), ("succeeded", "succeeded")]


def test_already_satisfied_is_its_own_outcome(world):
    open(world.root.file("a"), "w").close()
    assert world.execute(world.approved().id).state == "already-satisfied"


def test_nothing_is_sent_unless_approved(world):
    pending = world.propose()
    with pytest.raises(NotExecutable, match="not approved yet") as err:
        world.execute(pending.id)
    assert "(0 of 1 approvals)" in str(err.value)
    assert err.value.hint == ("1 more operator(s) must approve it: mcp-linux-infra approvals "
                              f"approve {pending.id} --as NAME, or in the approval console")
    rejected = world.store.reject(world.propose().id, "alice", "not during business hours")
    with pytest.raises(NotExecutable, match="rejected: not during business hours"):
        world.execute(rejected.id)
    expired = world.approved(ttl=1)
    time.sleep(2.1)  # the target's rule too: expired once the whole second is past
    with pytest.raises(NotExecutable, match="expired"):
        world.execute(expired.id)
    assert world.store.get(expired.id).state == "expired"
    assert world.root.log() == []  # the target never heard of any of them


def test_a_document_changed_after_approval_is_refused_by_the_target(world):
    p = world.approved(file="a")
    db = sqlite3.connect(world.settings.state_dir / "approvals.sqlite3")
    db.execute("UPDATE proposals SET document_text = ? WHERE id = ?",
               (p.document_text.replace(world.root.file("a"), world.root.file("b")), p.id))
    db.commit()
    db.close()
    with pytest.raises(TargetRefused, match="bad_signature.*nothing ran") as err:
        world.execute(p.id)
    assert "changed after approval" in err.value.hint
    done = world.store.get(p.id)
    assert done.state == "failed" and done.result["refusal"]["reason"] == "bad_signature"
    assert not os.path.exists(world.root.file("b")) and not os.path.exists(world.root.file("a"))
    # logged by its trace and digests only: nothing of an unverified document reaches the log
    logged = [r for r in world.root.log() if r.get("trace") == "t-1"]
    assert [r["refusal"]["reason"] for r in logged] == ["bad_signature"]
    assert world.attempts(p.nonce) == [] and "params" not in logged[0]


def test_a_busy_target_leaves_the_approval_unused(world):
    p = world.approved()
    lock = pra_state.exclusive(str(world.root.path / "var/lib/mcp-infra"), 5)
    with lock, pytest.raises(TargetRefused, match="refused for now: busy") as err:
        world.execute(p.id)
    assert "not used" in err.value.hint
    assert world.store.get(p.id).state == "approved"
    assert world.execute(p.id).state == "succeeded"  # the same approval, later


def test_a_lost_answer_is_reconciled_from_the_targets_record(world):
    p = world.approved()
    real = world.estate.sshd.users["pra-runner"]

    def answer_lost(command, stdin):
        real(command, stdin)
        return 0, b"garbage", b""
    world.estate.sshd.users["pra-runner"] = answer_lost
    with pytest.raises(OutcomeUnknown, match="no answer from the target") as err:
        world.execute(p.id)
    assert "execute it again" in err.value.hint
    lost = world.store.get(p.id)
    assert lost.state == "executing" and lost.executor is None
    world.estate.sshd.users["pra-runner"] = real
    done = world.execute(p.id)
    assert done.state == "succeeded" and "from the target's journal" in done.note
    assert [r["decision"] for r in world.attempts(p.nonce)] == ["accepted"]  # not sent again


def test_owner_tokens_name_live_processes_only():
    assert owner_alive(owner_token())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    start = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    token = owner_token().rsplit(":", 2)[0] + f":{child.pid}:{start}"
    assert owner_alive(token)
    child.kill()
    child.wait()
    assert not owner_alive(token)
    assert not owner_alive(None) and not owner_alive("other-boot:1:1")


# -- kill -9 at each point of an execution, in a child process ------------------------------
_CHILD = textwrap.dedent("""
    import json, os, signal, sys
    sys.path[:0] = {paths!r}
    from mcp_linux_infra.approvals import action_tier
    from mcp_linux_infra.approvals.executor import Executor
    from mcp_linux_infra.approvals.store import ApprovalStore
    from mcp_linux_infra.inventory import load_inventory
    from mcp_linux_infra.settings import Settings
    from mcp_linux_infra.ssh.pool import Pool
    settings = Settings.model_validate_json(sys.argv[1])
    point, proposal = sys.argv[2], sys.argv[3]
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)
    real = action_tier.ActionTier.run
    def run(self, document, signatures, timeout):
        if point == "before_send":
            die()
        if point == "in_flight":
            print("sending", flush=True)
        result = real(self, document, signatures, timeout)
        die()
    action_tier.ActionTier.run = run
    store = ApprovalStore(settings.state_dir / "approvals.sqlite3")
    host = load_inventory(settings.inventory).hosts[{host!r}]
    Executor(store, Pool(settings), "model:child").execute(proposal, host)
""")


def _child(world, point, proposal_id):
    code = _CHILD.format(paths=[str(REPO / "tests"), str(REPO / "src")], host=HOST)
    settings = world.settings.model_dump_json()
    return subprocess.Popen([sys.executable, "-c", code, settings, point, proposal_id],
                            stdout=subprocess.PIPE, text=True)


def _wait_for(condition, what: str, seconds: float = 60) -> None:
    """Poll a condition the test cannot be told about, up to a generous deadline."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.mark.parametrize("point", ["before_send", "after_answer", "in_flight"])
def test_kill_9_at_each_point_then_reconcile_runs_it_exactly_once(world, point):
    p = world.approved(action="slow_touch")
    with open(world.root.file("gate"), "w") as gate:
        if point == "in_flight":  # the action waits on the gate until the test opens it
            fcntl.flock(gate, fcntl.LOCK_EX)
        child = _child(world, point, p.id)
        if point == "in_flight":
            assert child.stdout.readline().strip() == "sending"
            _wait_for(world.root.ledger_file(p.nonce).exists,
                      "the target never recorded the nonce")
            child.send_signal(signal.SIGKILL)  # the target has taken the approval
        assert child.wait(timeout=60) == -signal.SIGKILL
        crashed = world.store.get(p.id)
        assert crashed.state == "executing" and crashed.executor and not owner_alive(
            crashed.executor)
        if point == "in_flight":
            # pra-run still waits and holds the run lock: nothing is known yet, nothing resent
            with pytest.raises(OutcomeUnknown, match="may still be running"):
                world.execute(p.id)
            fcntl.flock(gate, fcntl.LOCK_UN)
            _wait_for(lambda: any("outcome" in r for r in world.attempts(p.nonce)),
                      "the target never recorded the run's outcome")
    done = world.execute(p.id)
    assert done.state == "succeeded", done
    expected_note = ("the earlier delivery never ran it" if point == "before_send"
                     else "from the target's journal")
    assert expected_note in done.note
    accepted = [r for r in world.attempts(p.nonce) if r["decision"] == "accepted"]
    assert len(accepted) == 1 and accepted[0]["outcome"] == "changed"
    history = [(t["from_state"], t["to_state"]) for t in world.store.history(p.id)
               if t["event"] in STATES or t["event"] == "created"]
    assert history[:3] == [(None, "pending"), ("pending", "approved"),
                           ("approved", "executing")]
    assert history[-1] == ("executing", "succeeded")


# -- two operators: the envelope carries every signature; the target counts people -----------
def _catalog(world, settings=None, **approval_rules):
    """The test root's catalog with `touch_file`'s approval rules (and the host's
    `settings`) changed."""
    path = world.root.path / "etc/mcp-infra/actions.json"
    catalog = json.loads(path.read_text())
    catalog["actions"]["touch_file"].update(approval_rules)
    catalog["settings"].update(settings or {})
    path.write_text(json.dumps(catalog))


def test_a_two_person_proposal_runs_with_both_signatures(world):
    _catalog(world, approvals=2)
    p = world.propose()
    assert p.required == 2  # the host's rule, read at propose time
    p = world.approve(p, "alice")
    with pytest.raises(NotExecutable, match=r"not approved yet \(1 of 2 approvals: alice\)"):
        world.execute(p.id)
    assert world.root.log() == []  # nothing was sent
    p = world.approve(p, "bob")
    assert p.state == "approved"
    done = world.execute(p.id)
    assert done.state == "succeeded" and done.result["principals"] == ["alice", "bob"]
    record = json.loads((world.root.work / "sudo.json").read_text())
    envelope = json.loads(record["stdin"])
    assert envelope["document"] == p.document_text and envelope["step"] == 0
    assert len(envelope["signatures"]) == 2 and envelope["trace"] == "t-1"
    assert [r["principals"] for r in world.attempts(p.nonce)] == [["alice", "bob"]]


def test_the_target_refuses_fewer_operators_than_its_rule_now_asks(world):
    p = world.approved()  # 1 of 1 when proposed
    _catalog(world, approvals=2)  # the host's rule changed since
    with pytest.raises(TargetRefused, match=r"not_enough_approvals \(1 of 2 approvals\)") as err:
        world.execute(p.id)
    assert "propose again" in err.value.hint
    done = world.store.get(p.id)
    assert done.state == "failed" and done.result["refusal"]["reason"] == "not_enough_approvals"
    assert not os.path.exists(world.root.file("a"))


def test_two_server_operators_that_are_one_principal_on_the_target(world, tmp_path):
    """The registry knows dave; the target's allowed_signers lists dave's key as alice's:
    the target learns principals from its own file and refuses the duplicate."""

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "dave")],
                   check=True)
    dave = " ".join((tmp_path / "dave.pub").read_text().split()[:2])
    signers = world.root.path / "etc/mcp-infra/allowed_signers"
    signers.write_text(signers.read_text() + f"alice {dave}\n")
    world.operators.add("dave", dave)
    p = world.propose(required=2)
    p = world.approve(p, "alice")
    p = approve(world.store, p.id, 600, "dave", tmp_path / "dave")
    assert p.state == "approved" and p.principals == ["alice", "dave"]
    with pytest.raises(TargetRefused, match="duplicate_principal") as err:
        world.execute(p.id)
    assert "allowed_signers lists two registered keys under one principal" in err.value.hint


def test_an_approval_signed_before_the_upgrade_still_executes_as_v1(tmp_path, keys, root):
    """A schema-1 file with an approved, unexecuted v1 approval: migrated, then sent in the
    v1 envelope with its one signature (targets accept v1 for one more release)."""
    from pra_support import canonical as v1_text

    estate = make_action_estate(tmp_path, keys, root)
    path = estate.settings.state_dir / "approvals.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    schema = [line for line in (REPO / "tests/data/approvals-schema1.sql").read_text().split(
        ";\n") if line.startswith("CREATE")]
    for statement in schema:
        db.execute(statement)
    now = int(time.time())
    doc = root.document(proposal="p0a0b0c0d", not_before=now - 5, not_after=now + 600)
    text = v1_text(doc)
    db.execute("INSERT INTO proposals (id, created_at, updated_at, state, host, action, params, "
               "rationale, max_window, approver, nonce, not_before, not_after, signature) "
               "VALUES (?, ?, ?, 'approved', ?, ?, ?, 'the file is missing', 3600, 'alice', ?, "
               "?, ?, ?)", ("p0a0b0c0d", now, now, HOST, doc["action"],
                            json.dumps(doc["params"], separators=(",", ":")), doc["nonce"],
                            doc["not_before"], doc["not_after"],
                            keys.sign(text.encode(), "alice")))
    db.commit()
    db.close()
    store = open_approvals(estate.settings, estate.audit())
    pool = Pool(estate.settings)
    try:
        p = store.get("p0a0b0c0d")
        assert p.document_text == text and p.principals == ["alice"]
        done = Executor(store, pool, "model:test").execute(
            p.id, load_inventory(estate.settings.inventory).hosts[HOST])
    finally:
        pool.close()
        store.close()
        estate.close()
    assert done.state == "succeeded" and done.result["approver"] == "alice"
    assert os.path.exists(root.file("a"))


@pytest.mark.parametrize(("rules", "settings", "reason", "hint"), [
    pytest.param({"user_verification": True}, {}, "user_verification_missing",
                 "a plain ed25519 key cannot", id="action-asks-verification"),
    pytest.param({}, {"signers": "security_keys"}, "signer_not_security_key",
                 "security keys or passkeys only", id="host-takes-security-keys-only"),
])
def test_the_targets_security_key_rules_are_explained(world, rules, settings, reason, hint):
    p = world.approved()
    _catalog(world, settings, **rules)
    with pytest.raises(TargetRefused, match=reason) as err:
        world.execute(p.id)
    assert hint in err.value.hint
    assert world.store.get(p.id).state == "failed" and not os.path.exists(world.root.file("a"))
