"""Several servers, one store: separate processes (each a "server": the real store, executor
and pool, executing what it is told on stdin) and the real CLI, on one database (each test on
SQLite and on the session's PostgreSQL), against the real action tier (approval_support).
Every approved action runs exactly once at the target, whoever races for it; a server killed
with SIGKILL in the middle of an execution is reconciled by another. Processes are started,
told to go and heard back from through pipes; where the test waits for the target itself
(its nonce ledger, its journal), it polls the target's files under a generous deadline."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from pra_support import HOST

from mcp_linux_infra.approvals.decide import approve
from mcp_linux_infra.approvals.executor import owner_alive
from mcp_linux_infra.approvals.store import STATES

CLI = [sys.executable, "-m", "mcp_linux_infra"]
SLOW = {"slow_touch": {
    "description": "Wait for the test's gate (an flock), then touch the file.",
    "params": {"file": {"type": "path", "values": []}},
    "check": None, "run": [], "verify": ["/usr/bin/touch", "--", "{file}"],
    "idempotency_window_seconds": 300}}

# One server: says {"event": "ready"}, then for each proposal id read on stdin executes it
# and says {"event": "done", "state"} or {"event": "error", "kind", "message"}; just before
# its envelope leaves for the target, it says {"event": "sending"}.
SERVER = textwrap.dedent("""
    import json, sys
    from mcp_linux_infra.approvals import action_tier
    from mcp_linux_infra.approvals.executor import Executor
    from mcp_linux_infra.approvals.store import open_approvals
    from mcp_linux_infra.audit import Audit
    from mcp_linux_infra.errors import UserError
    from mcp_linux_infra.inventory import load_inventory
    from mcp_linux_infra.settings import Settings
    from mcp_linux_infra.ssh.pool import Pool

    def say(**fields):
        print(json.dumps(fields), flush=True)
    real = action_tier.ActionTier.run
    def run(self, *args):
        say(event="sending")
        return real(self, *args)
    action_tier.ActionTier.run = run
    settings = Settings.model_validate_json(sys.argv[1])
    store = open_approvals(settings, Audit(settings.audit_log))
    host = load_inventory(settings.inventory).hosts[sys.argv[2]]
    executor = Executor(store, Pool(settings), "model:" + sys.argv[3], answer_floor=20)
    say(event="ready")
    for line in sys.stdin:
        try:
            say(event="done", state=executor.execute(line.strip(), host).state)
        except UserError as exc:
            say(event="error", kind=type(exc).__name__, message=str(exc))
""")


class Server:
    """A server process on the estate's settings."""

    def __init__(self, estate, name: str):
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, estate.settings.model_dump_json(), HOST, name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.hear() == {"event": "ready"}

    def hear(self) -> dict:
        line = self.proc.stdout.readline()
        assert line, f"server {self.name} ended ({self.proc.wait()})"
        return json.loads(line)

    def execute(self, proposal_id: str) -> None:
        self.proc.stdin.write(proposal_id + "\n")
        self.proc.stdin.flush()

    def outcome(self) -> dict:
        """The next answer other than "sending"."""
        while (said := self.hear())["event"] == "sending":
            pass
        return said

    def stop(self) -> None:
        """End of its input: it exits; killed if it does not (a failed test's leftovers)."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def estate(tmp_path, keys, root, database_url):
    """The action estate, its store on the test's database, and a gate-waiting action."""
    from approval_support import make_action_estate

    from mcp_linux_infra.approvals.store import open_approvals
    from mcp_linux_infra.operators.registry import open_registry
    root.write_catalog(SLOW, settings={"lock_wait_seconds": 1})
    path = root.path / "etc/mcp-infra/actions.json"
    catalog = json.loads(path.read_text())
    catalog["actions"]["slow_touch"]["params"]["file"]["values"] = [root.file("a")]
    catalog["actions"]["slow_touch"]["run"] = ["/usr/bin/flock", root.file("gate"),
                                               "/usr/bin/true"]
    path.write_text(json.dumps(catalog))
    estate = make_action_estate(tmp_path, keys, root, database_url=database_url)
    estate.operators = open_registry(estate.settings)
    estate.store = open_approvals(estate.settings, estate.audit(), estate.operators)
    started = []

    def servers(*names):
        new = [Server(estate, name) for name in names]
        started.extend(new)
        return new
    estate.servers = servers
    yield estate
    for server in started:
        server.stop()
    estate.store.close()
    estate.operators.close()
    estate.close()


def approved(estate, action="touch_file", file="a"):
    """A proposal for `action`, approved by alice with her key (decide.approve: the CLI's
    own path)."""
    p = proposed(estate, action, file)
    return approve(estate.store, p.id, 600, "alice", estate.root.keys.dir / "alice")


def proposed(estate, action="touch_file", file="a", required=None):
    """A pending proposal for `action`, as the server makes it from the host's catalog."""
    from mcp_linux_infra.approvals.action_tier import ActionTier
    from mcp_linux_infra.inventory import load_inventory
    from mcp_linux_infra.ssh.pool import Pool
    pool = Pool(estate.settings)
    try:
        host = load_inventory(estate.settings.inventory).hosts[HOST]
        catalog = ActionTier(pool, host).catalog()
    finally:
        pool.close()
    params = {"file": estate.root.file(file)}
    info = {k: v for k, v in catalog.action(action).items() if k in ("steps", "runs_as")}
    return estate.store.create(HOST, action, params, "the file is missing",
                               catalog.max_window,
                               action_info={**info, "settings": catalog.settings},
                               required=required or catalog.required(action))


def accepted(estate, nonce):
    return [r for r in estate.root.log() if r.get("nonce") == nonce
            and r.get("decision") == "accepted"]


def entered_executing(estate, proposal_id):
    """How many times the proposal went approved -> executing (each: a delivery begun)."""
    return sum(1 for t in estate.store.history(proposal_id)
               if (t["from_state"], t["to_state"]) == ("approved", "executing"))


def cli(estate, *argv):
    return subprocess.run(CLI + list(argv), env=estate.env(**_url(estate)),
                          capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)


def _url(estate):
    url = estate.settings.database_url
    return {"LINUX_MCP_DATABASE_URL": url} if url else {}


def _wait_for(condition, what: str, seconds: float = 60) -> None:
    """Poll the target's files (the test cannot be told), up to a generous deadline."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_three_servers_execute_one_approval_at_once_it_runs_once(estate):
    """Told at once (their go is one write each, after all are ready): one delivery; the
    others are told it is running or already ran, and nothing reaches the target twice."""
    p = approved(estate)
    servers = estate.servers("a", "b", "c")
    for server in servers:
        server.execute(p.id)
    outcomes = [server.outcome() for server in servers]
    done = [o for o in outcomes if o["event"] == "done"]
    assert [o["state"] for o in done] == ["succeeded"], outcomes
    for other in (o for o in outcomes if o["event"] == "error"):
        assert other["kind"] in ("NotExecutable", "OutcomeUnknown"), other
        assert ("already executed" in other["message"] or "being executed" in other["message"]
                or "being reconciled" in other["message"]), other
    assert len(accepted(estate, p.nonce)) == 1 and entered_executing(estate, p.id) == 1
    assert estate.store.get(p.id).state == "succeeded"


def test_while_one_server_executes_another_and_the_cli_are_refused(estate):
    """The action waits at the target (the test holds its gate): a second server is told
    it is being executed; the CLI may not reject it; then it finishes, once."""
    p = approved(estate, action="slow_touch")
    first, second = estate.servers("first", "second")
    with open(estate.root.file("gate"), "w") as gate:
        fcntl.flock(gate, fcntl.LOCK_EX)
        first.execute(p.id)
        assert first.hear() == {"event": "sending"}  # executing, committed, this one's
        second.execute(p.id)
        said = second.outcome()
        assert said["kind"] == "OutcomeUnknown" and "being executed right now" in said["message"]
        rejected = cli(estate, "approvals", "reject", p.id, "--as", "bob", "--reason", "stop")
        assert rejected.returncode == 2 and "Traceback" not in rejected.stderr
        assert "is executing; it cannot become rejected" in rejected.stderr
        fcntl.flock(gate, fcntl.LOCK_UN)
        assert first.outcome() == {"event": "done", "state": "succeeded"}
    assert len(accepted(estate, p.nonce)) == 1 and entered_executing(estate, p.id) == 1
    assert "rejected" not in [t["to_state"] for t in estate.store.history(p.id)]


def test_two_servers_and_a_cli_reject_race_at_most_one_runs(estate):
    """Execute, execute and reject at once: either the reject came first (nothing ran) or
    one delivery ran once and the reject was refused."""
    p = approved(estate)
    servers = estate.servers("a", "b")
    reject = subprocess.Popen(CLI + ["approvals", "reject", p.id, "--as", "bob", "--reason",
                                     "changed my mind"], env=estate.env(**_url(estate)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for server in servers:
        server.execute(p.id)
    outcomes = [server.outcome() for server in servers]
    _, err = reject.communicate(timeout=120)
    final = estate.store.get(p.id)
    if final.state == "rejected":
        assert reject.returncode == 0 and estate.root.log() == []
        assert all(o["kind"] == "NotExecutable" for o in outcomes), outcomes
    else:
        assert final.state == "succeeded" and reject.returncode == 2, err
        assert len(accepted(estate, p.nonce)) == 1 and entered_executing(estate, p.id) == 1
        assert [o.get("state") for o in outcomes].count("succeeded") == 1


def test_a_server_killed_mid_execution_is_reconciled_by_another(estate):
    """kill -9 of the server whose envelope the target has taken: the other server finds
    the execution ownerless, waits while the target still runs it, then records the
    target's own outcome; the action ran once."""
    p = approved(estate, action="slow_touch")
    first, second = estate.servers("first", "second")
    with open(estate.root.file("gate"), "w") as gate:
        fcntl.flock(gate, fcntl.LOCK_EX)
        first.execute(p.id)
        assert first.hear() == {"event": "sending"}
        _wait_for(estate.root.ledger_file(p.nonce).exists, "the target never took the nonce")
        first.proc.send_signal(signal.SIGKILL)
        assert first.proc.wait(timeout=60) == -signal.SIGKILL
        crashed = estate.store.get(p.id)
        assert crashed.state == "executing" and not owner_alive(crashed.executor)
        second.execute(p.id)
        said = second.outcome()
        assert said["kind"] == "OutcomeUnknown" and "may still be running" in said["message"]
        fcntl.flock(gate, fcntl.LOCK_UN)
    _wait_for(lambda: any("outcome" in r for r in estate.root.log()
                          if r.get("nonce") == p.nonce), "the target never finished")
    second.execute(p.id)
    assert second.outcome() == {"event": "done", "state": "succeeded"}
    done = estate.store.get(p.id)
    assert "from the target's journal" in done.note and done.executor is None
    assert len(accepted(estate, p.nonce)) == 1 and os.path.exists(estate.root.file("a"))
    assert entered_executing(estate, p.id) == 1
    assert [t["event"] for t in estate.store.history(p.id) if t["event"] in STATES][-1] == \
        "succeeded"


def test_the_console_reads_and_changes_the_same_store(estate):
    """The console (its own connections on the same database) lists what another process
    proposed and approved; carol, enrolled in the console, rejects it there; a server
    process is then refused it as rejected, and nothing reaches the target."""
    from console_support import ConsoleServer

    p = approved(estate)
    console = ConsoleServer(estate.settings.state_dir,
                            database_url=estate.settings.database_url)
    try:
        with console.client() as carol:
            passkey, _ = carol.enroll("carol")
            assert carol.login(passkey).status_code == 200
            assert f'data-proposal="{p.id}"' in carol.page("/")[0]
            answer = carol.post(f"/p/{p.id}/reject", data={"csrf": carol.csrf,
                                                           "reason": "not now"})
            assert answer.headers["location"] == f"/p/{p.id}?status=rejected"
    finally:
        console.stop()
    [server] = estate.servers("a")
    server.execute(p.id)
    said = server.outcome()
    assert said["kind"] == "NotExecutable" and "rejected: not now" in said["message"], said
    assert estate.root.log() == [] and estate.operators.get("carol").kind == "sk-ecdsa"


def test_an_owner_on_another_host_is_reconciled_safely(estate):
    """A server cannot see a process on another host: an execution owned by one (here: an
    owner token of another boot) is reconciled at once. Safe: while the first delivery
    holds the target, the second is refused and nothing is guessed; the first then records
    its outcome; the action ran once."""
    p = approved(estate, action="slow_touch")
    first, second = estate.servers("first", "second")
    with open(estate.root.file("gate"), "w") as gate:
        fcntl.flock(gate, fcntl.LOCK_EX)
        first.execute(p.id)
        assert first.hear() == {"event": "sending"}
        _wait_for(estate.root.ledger_file(p.nonce).exists, "the target never took the nonce")
        estate.store.db.run("UPDATE proposals SET executor = ? WHERE id = ?",
                            ("another-host-boot:4242:1", p.id))
        second.execute(p.id)
        said = second.outcome()
        assert said["kind"] == "OutcomeUnknown" and "may still be running" in said["message"]
        fcntl.flock(gate, fcntl.LOCK_UN)
        assert first.outcome() == {"event": "done", "state": "succeeded"}
    assert len(accepted(estate, p.nonce)) == 1 and entered_executing(estate, p.id) == 1
    second.execute(p.id)
    said = second.outcome()
    assert said["kind"] == "NotExecutable" and "already executed: succeeded" in said["message"]


def test_two_operators_approve_from_the_cli_at_once_then_two_servers_execute(estate):
    """alice and bob approve a two-person proposal from two CLI processes at the same time
    (one document prepared, both signatures kept, approved once); two servers then execute
    it at once: one delivery, with both signatures."""
    p = proposed(estate, required=2)
    servers = estate.servers("a", "b")
    approvers = [subprocess.Popen(
        CLI + ["approvals", "approve", p.id, "--yes", "--as", who, "--key",
               str(estate.root.keys.dir / who)], env=estate.env(**_url(estate)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        for who in ("alice", "bob")]
    for approver in approvers:
        _, err = approver.communicate(timeout=120)
        assert approver.returncode == 0, err
    final = estate.store.get(p.id)
    assert final.state == "approved" and sorted(final.principals) == ["alice", "bob"]
    events = [t["event"] for t in estate.store.history(p.id)]
    assert events.count("document_prepared") == 1 and events.count("approved") == 1
    for server in servers:
        server.execute(p.id)
    outcomes = [server.outcome() for server in servers]
    assert [o.get("state") for o in outcomes].count("succeeded") == 1, outcomes
    [run] = accepted(estate, final.nonce)
    assert sorted(run["principals"]) == ["alice", "bob"]
    assert entered_executing(estate, p.id) == 1
