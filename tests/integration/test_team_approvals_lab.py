"""Two operators, each with their own key and principal, on a real target deployed by the
real role: `mcp_infra_operators` lists alice and bob (ed25519 keys of ssh-keygen), and
`mcp_infra_pra_action_approvals` gives `start_service` `approvals: 2`. The model proposes
through a real MCP client (`mcp-linux-infra serve` over stdio) and sees "0 of 2 approvals"
and the console link; alice approves with the operator CLI; the execution is refused "1 of 2"
(by the server, and by the target itself when it is sent alice's signature alone); bob
approves; the target runs the action with both signatures and logs both principals.

Its own one-target lab (prefix `itw`, a port the OS says is free), so that the session's
shared deployed lab keeps its catalog; `lab down` afterwards."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from integration.deployed import init_keys, lab_env, one_target_lab
from mcp import Client, StdioServerParameters
from mcp_support import ok, refused
from paths_support import CLI, REPO

pytestmark = pytest.mark.lab
OPERATORS = ("alice", "bob")
UNIT = "lab-app"


def _run(argv, env) -> subprocess.CompletedProcess:
    out = subprocess.run(argv, check=False, env=env, capture_output=True, text=True,
                         timeout=900, cwd=REPO, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, f"{argv}:\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """(Deployed handle, the operators' key directory) of a one-target lab whose role
    deployed alice and bob and `start_service` with approvals: 2."""
    root = tmp_path_factory.mktemp("team")
    env = lab_env(root, "itw")
    init_keys(root, env)
    operators = root / "operators"
    operators.mkdir()
    for name in OPERATORS:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                        str(operators / name)], check=True, timeout=60)
    with one_target_lab(root, env, {
        "mcp_infra_operators": [
            {"principal": name, "public_key": (operators / f"{name}.pub").read_text().strip()}
            for name in OPERATORS],
        "mcp_infra_pra_action_approvals": {"start_service": {"approvals": 2}},
    }) as handle:
        yield handle, operators


@pytest.fixture
def server_env(team, tmp_path):
    """Settings of the server and of the operators' CLI on this machine; alice and bob
    registered (`operators add`) with the keys the role deployed."""
    lab, operators = team
    state = tmp_path / "state"
    env = dict(os.environ, LINUX_MCP_INVENTORY=str(lab.inventory),
               LINUX_MCP_KEYS_DIR=str(lab.keys_dir), LINUX_MCP_STATE_DIR=str(state),
               LINUX_MCP_KNOWN_HOSTS=str(state / "known_hosts"),
               LINUX_MCP_AUDIT_LOG=str(state / "audit.jsonl"),
               LINUX_MCP_CONSOLE_ORIGIN="https://approve.example.com")
    for name in OPERATORS:
        _run([CLI, "operators", "add", name, "--public-key", str(operators / f"{name}.pub")],
             env)
    return env


def _approve(env, operators: Path, pid: str, name: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "approvals", "approve", pid, "--yes", "--as", name, "--key",
                           str(operators / name)], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120, check=False)


def _stored(env, pid: str) -> tuple[str, list[str]]:
    """The proposal's document and its signatures, as the store holds them."""
    db = sqlite3.connect(f"{env['LINUX_MCP_STATE_DIR']}/approvals.sqlite3")
    try:
        text = db.execute("SELECT document_text FROM proposals WHERE id = ?", (pid,)
                          ).fetchone()[0]
        signatures = [r[0] for r in db.execute("SELECT signature FROM approvals WHERE "
                                               "proposal = ? ORDER BY at", (pid,))]
    finally:
        db.close()
    return text, signatures


@pytest.mark.anyio
async def test_one_of_two_is_refused_two_of_two_runs(team, server_env):
    lab, operators = team
    env = server_env
    lab.root_ok(f"systemctl stop {UNIT}")
    params = StdioServerParameters(command=CLI, args=["serve"], env=env,
                                   cwd=env["LINUX_MCP_STATE_DIR"].rsplit("/", 1)[0])
    async with Client(params) as client:
        proposed = await ok(client, "propose_pra_action", host=lab.host,
                            action="start_service", params={"unit": UNIT},
                            rationale=f"{UNIT} is inactive and nginx answers 502 on /app/")
        pid = proposed["proposal_id"]
        assert proposed["approvals"] == {"summary": "0 of 2 approvals", "required": 2,
                                         "approved_by": []}
        assert proposed["console_url"] == f"https://approve.example.com/p/{pid}"
        assert proposed["console_url"] in proposed["next_step"]

        first = _approve(env, operators, pid, "alice")
        assert first.returncode == 0, first.stderr
        assert "1 of 2 approvals" in first.stderr
        again = _approve(env, operators, pid, "alice")
        assert again.returncode == 2 and "already_approved" in again.stderr
        got = await ok(client, "get_proposal", proposal_id=pid)
        assert got["state"] == "pending" and got["approvals"]["summary"] == "1 of 2 approvals"
        assert got["approvals"]["approved_by"] == ["alice"]
        text = await refused(client, "execute_pra_action", proposal_id=pid)
        assert "not approved yet (1 of 2 approvals: alice)" in text

        # the target's own rule: alice's signature alone is refused there too, nothing runs
        document, signatures = _stored(env, pid)
        alone = lab.ssh_pra("run", json.dumps({"document": document,
                                               "signatures": signatures, "step": 0}),
                            timeout=300)
        assert alone.returncode == 126, (alone.stdout, alone.stderr)
        refusal = json.loads(alone.stderr.splitlines()[-1])["mcp_refusal"]
        assert (refusal["reason"], refusal["detail"]) == ("not_enough_approvals",
                                                          "1 of 2 approvals")
        assert lab.root_ok(f"systemctl is-active {UNIT} || true").strip() == "inactive"

        second = _approve(env, operators, pid, "bob")
        assert second.returncode == 0, second.stderr
        assert "2 of 2 approvals" in second.stderr
        done = await ok(client, "execute_pra_action", proposal_id=pid)
        assert (done["state"], done["outcome"]) == ("succeeded", "changed"), json.dumps(done)
        verified = await ok(client, "get_service_status", host=lab.host, service=UNIT)
        assert verified["active"] is True
        got = await ok(client, "get_proposal", proposal_id=pid)
    assert got["result"]["principals"] == ["alice", "bob"]
    logged = [json.loads(line) for line in lab.root_ok(
        "cat /var/log/mcp-infra/pra-run.log").splitlines()]
    accepted = [r for r in logged if r.get("decision") == "accepted" and r.get("proposal") == pid]
    assert len(accepted) == 1 and accepted[0]["principals"] == ["alice", "bob"]
    assert accepted[0]["nonce"] == got["nonce"] and accepted[0]["required"] == 2
    refused_alone = [r for r in logged if r.get("proposal") == pid and
                     r.get("decision") == "refused"]
    assert [r["refusal"]["reason"] for r in refused_alone] == ["not_enough_approvals"]
