"""Human-approved actions end to end on the session's deployed lab (integration/deployed.py):
`mcp-linux-infra serve` over stdio in both protocol eras plays the model, the operator CLI
signs with the operator key that the real playbook put into allowed_signers, and the
target's own pra-run decides. Also: every way the model is refused, the target refusing a
proposal changed after approval, and crashes reconciled from the target's real journal."""

import json
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp_support import ok, refused
from paths_support import CLI, REPO

pytest_plugins = ["integration.deployed"]
pytestmark = pytest.mark.lab



def server(env) -> StdioServerParameters:
    return StdioServerParameters(command=CLI, args=["serve"], env=env,
                                 cwd=env["LINUX_MCP_STATE_DIR"].rsplit("/", 1)[0])


def operator(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "approvals", *args], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120, check=False)


def journal(deployed, nonce: str) -> list[dict]:
    text = deployed.root_ok(f"journalctl -q -o cat -t pra-run -g {nonce} || true")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def main_pid(deployed, unit: str) -> str:
    return deployed.root_ok(f"systemctl show -p MainPID --value {unit}").strip()


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_diagnose_propose_approve_execute_verify(deployed, env, mode):
    host = deployed.host
    deployed.root_ok("systemctl restart lab-outage.service")  # the lab's own outage
    assert deployed.root_ok("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/app/"
                            ) == "502"
    async with Client(server(env), mode=mode) as client:
        report = await ok(client, "diagnose_system", host=host,
                          checks=["services", "failed_units"])
        assert "key service lab-app.service is inactive (dead)" in [
            f["message"] for f in report["reports"][0]["findings"]]
        actions = await ok(client, "list_pra_actions", host=host)
        restart = next(a for a in actions["actions"] if a["name"] == "restart_service")
        assert "lab-app" in restart["params"]["unit"]
        proposal = await ok(client, "propose_pra_action", host=host, action="restart_service",
                            params={"unit": "lab-app"},
                            rationale="nginx answers 502 on /app/ and lab-app is inactive")
        pid = proposal["proposal_id"]
        assert proposal["preview"]["output"] == "inactive"
        assert "not approved yet" in await refused(client, "execute_pra_action",
                                                   proposal_id=pid)
        approved = operator(env, "approve", pid, "--yes")
        assert approved.returncode == 0, approved.stderr
        done = await ok(client, "execute_pra_action", proposal_id=pid)
        assert (done["state"], done["outcome"]) == ("succeeded", "changed"), json.dumps(done)
        assert "works once" in await refused(client, "execute_pra_action", proposal_id=pid)
        verified = await ok(client, "get_service_status", host=host, service="lab-app")
        assert verified["active"] is True
        got = await ok(client, "get_proposal", proposal_id=pid)
    assert deployed.root_ok("curl -s http://127.0.0.1/app/") == "lab-app OK\n"
    records = journal(deployed, got["nonce"])
    assert [(r["decision"], r.get("outcome")) for r in records] == [("accepted", "changed")]
    assert records[0]["proposal"] == pid and records[0]["principals"] == ["operator"]
    audit = [json.loads(line) for line in
             Path(env["LINUX_MCP_AUDIT_LOG"]).read_text().splitlines()]
    execute_trace = [r["trace"] for r in audit if r.get("tool") == "execute_pra_action"][-2]
    assert records[0]["trace"] == execute_trace  # both sides' records join
    assert [r["to_state"] for r in audit if r.get("proposal") == pid
            and r["event"] == "proposal_transition"] == [
        "pending", "approved", "executing", "succeeded"]


@pytest.mark.anyio
async def test_the_model_is_refused_without_a_valid_approval(deployed, env):
    host = deployed.host
    before = {u: main_pid(deployed, u) for u in ("cron", "nginx")}

    async def propose(client, unit):
        return (await ok(client, "propose_pra_action", host=host, action="restart_service",
                         params={"unit": unit}, rationale=f"{unit} seems hung, says the test"
                         ))["proposal_id"]

    async with Client(server(env), mode="legacy") as client:
        rejected = await propose(client, "cron")
        assert operator(env, "reject", rejected, "--reason", "cron is fine").returncode == 0
        text = await refused(client, "execute_pra_action", proposal_id=rejected)
        assert "rejected: cron is fine" in text

        expiring = await propose(client, "cron")
        assert operator(env, "approve", expiring, "--yes", "--ttl", "1s").returncode == 0
        await anyio.sleep(2.2)
        text = await refused(client, "execute_pra_action", proposal_id=expiring)
        assert "expired" in text and "propose it again" in text

        tampered = await propose(client, "cron")
        assert operator(env, "approve", tampered, "--yes").returncode == 0
        db = sqlite3.connect(f"{env['LINUX_MCP_STATE_DIR']}/approvals.sqlite3")
        db.execute("UPDATE proposals SET document_text = replace(document_text, "
                   "'\"unit\":\"cron\"', '\"unit\":\"nginx\"') WHERE id = ?", (tampered,))
        db.commit()
        db.close()
        text = await refused(client, "execute_pra_action", proposal_id=tampered)
        assert f"{host} refused proposal {tampered}: bad_signature" in text
        assert "changed after approval" in text
        got = await ok(client, "get_proposal", proposal_id=tampered)
        assert got["state"] == "failed"
    assert {u: main_pid(deployed, u) for u in ("cron", "nginx")} == before  # nothing ran
    # pra-run logged the attempt by its trace and digests: nothing of the unverified document
    trace = re.search(r"\(trace ([A-Za-z0-9._-]+)\)", text).group(1)
    refusals = [r for r in journal(deployed, trace) if r.get("trace") == trace]
    assert [r["refusal"]["reason"] for r in refusals] == ["bad_signature"]
    assert refusals[0]["verified"] is False and "params" not in refusals[0]
    assert journal(deployed, got["nonce"]) == []


_CHILD = textwrap.dedent("""
    import os, signal, sys
    from mcp_linux_infra.approvals import action_tier
    from mcp_linux_infra.approvals.executor import Executor
    from mcp_linux_infra.audit import Audit
    from mcp_linux_infra.inventory import load_inventory
    from mcp_linux_infra.approvals.store import open_approvals
    from mcp_linux_infra.settings import Settings
    from mcp_linux_infra.ssh.pool import Pool
    point, proposal = sys.argv[1], sys.argv[2]
    real = action_tier.ActionTier.run
    def run(self, document, signatures, timeout):
        if point == "before_send":
            os.kill(os.getpid(), signal.SIGKILL)
        real(self, document, signatures, timeout)
        os.kill(os.getpid(), signal.SIGKILL)
    action_tier.ActionTier.run = run
    settings = Settings()
    store = open_approvals(settings, Audit(None))
    host = load_inventory(settings.inventory).hosts[{host!r}]
    Executor(store, Pool(settings), "model:child").execute(proposal, host)
""")


@pytest.mark.anyio
@pytest.mark.parametrize("point", ["before_send", "after_answer"])
async def test_a_crashed_execution_is_reconciled_and_runs_once(deployed, env, point):
    host = deployed.host
    deployed.root_ok("systemctl stop lab-app")
    async with Client(server(env), mode="legacy") as client:
        pid = (await ok(client, "propose_pra_action", host=host, action="start_service",
                        params={"unit": "lab-app"}, rationale="lab-app is down"))["proposal_id"]
        assert operator(env, "approve", pid, "--yes").returncode == 0
        child = await anyio.run_process([sys.executable, "-c", _CHILD.format(host=host),
                                         point, pid], env=env, check=False)
        assert child.returncode == -signal.SIGKILL, child.stderr
        crashed = await ok(client, "get_proposal", proposal_id=pid)
        assert crashed["state"] == "executing"
        done = await ok(client, "execute_pra_action", proposal_id=pid)
        assert done["state"] == "succeeded", done
        expected = ("the earlier delivery never ran it" if point == "before_send"
                    else "from the target's journal")
        assert expected in done["note"]
    records = journal(deployed, crashed["nonce"])
    assert [r["decision"] for r in records] == ["accepted"]  # sent once or twice, ran once
    assert deployed.root_ok("systemctl is-active lab-app").strip() == "active"


def test_the_demo_session(deployed, env):
    """scripts/demo_session.py (the session scripts/demo.sh runs) on the deployed lab."""
    lab = {k: v for k, v in deployed.env.items() if k.startswith("LINUX_MCP_LAB_")}
    done = subprocess.run([sys.executable, str(REPO / "scripts/demo_session.py"), "--host",
                           deployed.host], env=dict(env, **lab, COLUMNS="160"),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    out = done.stdout + done.stderr  # the operator CLI reports on stderr
    for seen in ("-> HTTP 502", "key service lab-app.service is inactive (dead)",
                 "connect() failed (111: Connection refused)", "not approved yet",
                 "approved p", '"state": "succeeded"', "works once",
                 "lab-app.service is active (running)", "-> HTTP 200 lab-app OK"):
        assert seen in out, (seen, out[-3000:])
