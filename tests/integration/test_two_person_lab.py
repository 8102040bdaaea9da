"""The two-person rule on a real target, deployed by the real role: two operators (one a
passkey, an sk-ecdsa key of the simulated WebAuthn authenticator whose application is the
RP ID; one ed25519 key of ssh-keygen) in mcp_infra_operators, `start_service` given
`approvals: 2` by mcp_infra_pra_action_approvals. Through ssh pra-runner -> pra-exec ->
sudo -n pra-run, the target accepts the 2-of-2 and refuses the 1-of-2 and the duplicate.

Its own one-target lab (prefix `itq`, a port the OS says is free), so that the session's
shared deployed lab keeps its catalog."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from integration.deployed import Deployed, init_keys, lab_env, one_target_lab
from pra_support import canonical
from sshsig_support import Authenticator

pytestmark = pytest.mark.lab
RP_ID = "approve.example.com"


@pytest.fixture(scope="module")
def quorum(tmp_path_factory):
    """(Deployed handle, authenticator) of a one-target lab with the two-person catalog."""
    root = tmp_path_factory.mktemp("quorum")
    env = lab_env(root, "itq")
    keys_dir = init_keys(root, env)
    passkey = Authenticator(RP_ID)
    with one_target_lab(root, env, {
        "mcp_infra_operators": [
            {"principal": "operator",
             "public_key": (keys_dir / "operator.key.pub").read_text().strip()},
            {"principal": "passkey-op", "public_key": passkey.public_line()}],
        "mcp_infra_pra_action_approvals": {"start_service": {"approvals": 2}},
        "mcp_infra_pra_approval_settings": {"webauthn_origins": [f"https://{RP_ID}"]},
    }) as handle:
        yield handle, passkey


def _document(lab: Deployed) -> str:
    now = int(time.time())
    return canonical({"v": 2, "id": f"quorum-{os.urandom(4).hex()}", "approvals": 1,
                      "steps": [{"host": lab.host, "action": "start_service",
                                 "params": {"unit": "nginx"}, "nonce": os.urandom(16).hex()}],
                      "not_before": now - 30, "not_after": now + 600})


def _send(lab: Deployed, text: str, signatures: list[str]) -> subprocess.CompletedProcess:
    envelope = json.dumps({"document": text, "signatures": signatures, "step": 0})
    return lab.ssh_pra("run", envelope, timeout=300)


def _reason(proc) -> dict:
    assert proc.returncode == 126, (proc.returncode, proc.stdout, proc.stderr)
    return json.loads(proc.stderr.splitlines()[-1])["mcp_refusal"]


def test_the_catalog_shows_the_rule(quorum):
    lab, _ = quorum
    listed = lab.ssh_pra("list")
    assert listed.returncode == 0, listed.stderr
    catalog = json.loads(listed.stdout)
    start = next(a for a in catalog["actions"] if a["name"] == "start_service")
    assert start["approvals"] == 2 and start["user_verification"] is False
    assert catalog["settings"]["webauthn_origins"] == [f"https://{RP_ID}"]
    signers = lab.root_ok("cat /etc/mcp-infra/allowed_signers")
    assert "passkey-op namespaces=\"mcp-linux-infra-approval\" sk-ecdsa-sha2-nistp256@" in signers


def test_two_of_two_accepted_one_of_two_and_duplicate_refused(quorum):
    lab, passkey = quorum
    text = _document(lab)
    by_operator = lab.sign(text)
    by_passkey = passkey.sign(text.encode())
    one = _reason(_send(lab, text, [by_passkey]))
    assert (one["reason"], one["detail"]) == ("not_enough_approvals", "1 of 2 approvals")
    twice = _reason(_send(lab, text, [by_operator, by_operator]))
    assert twice["reason"] == "duplicate_principal"
    again = passkey.sign(text.encode(), counter=2)
    assert _reason(_send(lab, text, [by_passkey, again]))["reason"] == "duplicate_principal"
    done = _send(lab, text, [by_operator, by_passkey])
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["principals"] == ["operator", "passkey-op"]
    assert got["outcome"] == "already-satisfied"  # nginx runs in the lab
    logged = [json.loads(line) for line in lab.root_ok(
        "cat /var/log/mcp-infra/pra-run.log").splitlines()]
    accepted = [r for r in logged if r.get("decision") == "accepted"]
    assert accepted[-1]["principals"] == ["operator", "passkey-op"]
    assert {s["signature_type"] for s in accepted[-1]["signers"]} == {
        "ssh-ed25519", "webauthn-sk-ecdsa-sha2-nistp256@openssh.com"}
    assert [r["refusal"]["reason"] for r in logged[-4:-1]] == [
        "not_enough_approvals", "duplicate_principal", "duplicate_principal"]
    assert _reason(_send(lab, text, [by_operator, by_passkey]))["reason"] == "replayed_nonce"


def test_a_passkey_signature_without_presence_is_refused(quorum):
    lab, passkey = quorum
    text = _document(lab)
    proc = _send(lab, text, [lab.sign(text), passkey.sign(text.encode(), flags=0x04)])
    assert _reason(proc)["reason"] == "user_presence_missing"
