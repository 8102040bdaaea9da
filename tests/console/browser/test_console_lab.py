"""The whole approval flow with a real browser and a real target (issue 11): two operators
enroll passkeys in the console (headless Chromium, virtual authenticators), the real role
deploys their key lines to a lab target with `restart_service` needing two approvals with
user verification and the console's origin pinned; the model proposes through the MCP server;
operator A approves in the browser, and the target refuses the envelope with "1 of 2
approvals"; operator B approves; the server executes, the target runs the action and
`get_service_status` confirms.

Its own one-target lab (prefix `itb`, a port the OS says is free); `lab down` on the way out."""
from __future__ import annotations

import json

import anyio
import pytest
from console_browser_support import approve, enroll, login, run_console
from integration.deployed import init_keys, lab_env, one_target_lab
from lab_support import require_lab
from mcp import Client, StdioServerParameters
from mcp_support import ok, refused
from paths_support import CLI
from pra_support import refusal
from sshsig_support import UP, UV, WEBAUTHN

pytestmark = pytest.mark.lab


def server_env(tmp_path, lab: dict[str, str]) -> dict[str, str]:
    """The server's and the console's settings for the lab under tmp_path."""
    state = tmp_path / "state"
    return dict(lab, LINUX_MCP_INVENTORY=str(tmp_path / "inventory.ini"),
                LINUX_MCP_KEYS_DIR=str(tmp_path / "keys"), LINUX_MCP_STATE_DIR=str(state),
                LINUX_MCP_KNOWN_HOSTS=str(state / "known_hosts"),
                LINUX_MCP_AUDIT_LOG=str(state / "audit.jsonl"),
                LINUX_MCP_KEY_SERVICES="ssh,cron,nginx,lab-app")


def test_two_operators_approve_in_the_browser_and_the_target_runs_it(tmp_path, tab, open_tab):
    require_lab()
    lab_settings = lab_env(tmp_path, "itb")
    init_keys(tmp_path, lab_settings)
    with run_console(tmp_path, server_env(tmp_path, lab_settings)) as console:
        alice = enroll(tab, console, "alice")
        bob = enroll(open_tab(), console, "bob")
        with one_target_lab(tmp_path, lab_settings, {
            "mcp_infra_operators": [{"principal": o.name, "public_key": o.key_line}
                                    for o in (alice, bob)],
            "mcp_infra_pra_action_approvals": {"restart_service": {
                "approvals": 2, "user_verification": True}},
            "mcp_infra_pra_approval_settings": {"webauthn_origins": [console.origin]},
        }) as lab:
            lab.root_ok("systemctl restart lab-outage.service")  # the lab's own outage
            anyio.run(flow, lab, console, alice, bob)


async def flow(lab, console, alice, bob) -> None:
    server = StdioServerParameters(command=CLI, args=["serve"], env=console.env,
                                   cwd=str(console.cwd))
    async with Client(server) as client:
        proposal = await ok(client, "propose_pra_action", host=lab.host,
                            action="restart_service", params={"unit": "lab-app"},
                            rationale="nginx answers 502 on /app/ and lab-app is inactive")
        pid = proposal["proposal_id"]
        assert proposal["console_url"] == f"{console.origin}/p/{pid}"
        assert proposal["approvals"]["summary"] == "0 of 2 approvals"

        login(alice, console)
        assert approve(alice, console, pid) == "pending"
        got = await ok(client, "get_proposal", proposal_id=pid)
        assert got["approvals"]["summary"] == "1 of 2 approvals"
        assert got["approvals"]["approved_by"] == ["alice"]
        assert "not approved yet" in await refused(client, "execute_pra_action",
                                                   proposal_id=pid)
        # the target itself refuses alice's approval alone
        stored = console.proposal(pid)
        envelope = json.dumps({"document": stored.document_text,
                               "signatures": console.signatures(pid), "step": 0}).encode()
        one = refusal(lab.ssh_pra("run", envelope, timeout=300, text=False))
        assert (one["reason"], one["detail"]) == ("not_enough_approvals", "1 of 2 approvals")

        login(bob, console)
        assert approve(bob, console, pid) == "approved"
        done = await ok(client, "execute_pra_action", proposal_id=pid)
        assert (done["state"], done["outcome"]) == ("succeeded", "changed"), json.dumps(done)
        verified = await ok(client, "get_service_status", host=lab.host, service="lab-app")
        assert verified["active"] is True
    assert lab.root_ok("curl -s http://127.0.0.1/app/") == "lab-app OK\n"
    logged = [json.loads(line) for line in lab.root_ok(
        "cat /var/log/mcp-infra/pra-run.log").splitlines()]
    accepted = [r for r in logged if r.get("decision") == "accepted"]
    assert accepted[-1]["principals"] == ["alice", "bob"]
    assert [(s["signature_type"], s["flags"] & (UP | UV), s["origin"])
            for s in accepted[-1]["signers"]] == [(WEBAUTHN, UP | UV, console.origin)] * 2
