"""`mcp-linux-infra approvals ...` as an operator runs it (real processes, real ssh-keygen):
what it shows, when it refuses to sign, each operator under their own principal and key
(a second operator adds the second approval; the same one twice is refused), passphrase
keys and ssh-agent, the ttl cap."""

import json
import os
import pty
import re
import select
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from paths_support import CLI
from pra_support import HOST, NAMESPACE
from sk_support import build_provider, new_key

from mcp_linux_infra.operators.registry import Registry


def propose(estate, max_window=3600):
    return estate.store.create(HOST, "touch_file", {"file": estate.root.file("a")},
                               "the file is missing, see the log", max_window,
                               preview={"available": False, "why": "no read-only equivalent"},
                               action_info={"description": "Desired state: the file exists.",
                                            "runs_as": "root"})


def cli(estate, *args, **env):
    return subprocess.run([CLI, "approvals", *args], env=estate.env(**env), capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120, check=False,
                          cwd=estate.settings.state_dir.parent)


def verifies(estate, proposal, public_key: str, principal: str, index: int = 0) -> bool:
    """Stock ssh-keygen: the `index`th stored signature is `public_key`'s over the document."""
    signers = estate.settings.state_dir / "signers"
    signers.write_text(f"{principal} {public_key}\n")
    sig = estate.settings.state_dir / "doc.sig"
    sig.write_text(estate.store.signatures(proposal.id)[index])
    done = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", principal,
                           "-n", NAMESPACE, "-s", str(sig)],
                          input=proposal.document_text.encode(), capture_output=True,
                          check=False)
    return done.returncode == 0


def enroll(estate, name: str, key: Path) -> None:
    """Register `key` (its .pub) as operator `name`, as `operators add` does."""
    operators = Registry(estate.settings.state_dir / "approvals.sqlite3")
    operators.add(name, Path(f"{key}.pub").read_text())
    operators.close()


def test_without_a_terminal_it_shows_then_refuses_to_sign(action_estate):
    p = propose(action_estate)
    done = cli(action_estate, "approve", p.id, COLUMNS="200")
    assert done.returncode == 2
    assert "stdin is not a terminal" in done.stderr and "--yes" in done.stderr
    for shown in (HOST, "touch_file", f"file={action_estate.root.file('a')}", "the file is missing",
                  "no preview: no read-only equivalent", "Desired state: the file exists."):
        assert shown in done.stdout, shown
    assert action_estate.store.get(p.id).state == "pending"


def test_yes_signs_exactly_the_stored_document(action_estate, keys):
    p = propose(action_estate)
    done = cli(action_estate, "approve", p.id, "--yes", "--ttl", "10m")
    assert done.returncode == 0, done.stderr
    assert f"execute_pra_action(proposal_id='{p.id}')" in " ".join(done.stderr.split())
    a = action_estate.store.get(p.id)
    assert a.state == "approved" and a.principals == ["alice"]
    assert a.not_after - a.not_before == 600 and abs(a.not_before - time.time()) < 60
    assert verifies(action_estate, a, keys.public("alice"), "alice")
    assert not verifies(action_estate, a, keys.public("bob"), "alice")
    history = action_estate.store.history(p.id)
    assert history[-1]["actor"] == "operator:alice" and history[-1]["to_state"] == "approved"
    records = [json.loads(line) for line in action_estate.settings.audit_log.read_text().splitlines()]
    assert [(r["event"], r["to_state"]) for r in records if r.get("proposal") == p.id] == [
        ("proposal_transition", "pending"), ("document_prepared", "pending"),
        ("approval_added", "pending"), ("proposal_transition", "approved")]
    again = cli(action_estate, "approve", p.id, "--yes")
    assert again.returncode == 2 and "is approved; only a pending" in again.stderr


def test_ttl_is_capped_at_the_hosts_window(action_estate):
    p = propose(action_estate, max_window=900)
    done = cli(action_estate, "approve", p.id, "--yes", "--ttl", "2h")
    assert done.returncode == 0 and "capped at 900 s" in done.stderr
    a = action_estate.store.get(p.id)
    assert a.not_after - a.not_before == 900
    assert cli(action_estate, "approve", p.id, "--ttl", "soon").returncode == 2


def test_a_confirmation_on_a_terminal(action_estate):
    def run(answer: bytes):
        p = propose(action_estate)
        leader, follower = pty.openpty()
        proc = subprocess.Popen([CLI, "approvals", "approve", p.id], env=action_estate.env(),
                                stdin=follower, stdout=follower, stderr=follower, close_fds=True)
        os.close(follower)
        seen, deadline = b"", time.monotonic() + 60
        while b"? [y/N] " not in seen and time.monotonic() < deadline:
            if select.select([leader], [], [], 1)[0]:
                seen += os.read(leader, 65536)
        assert b"? [y/N] " in seen, seen[-500:]
        os.write(leader, answer)
        try:
            while select.select([leader], [], [], 5)[0]:
                seen += os.read(leader, 65536)
        except OSError:
            pass  # the child closed the terminal
        proc.wait(timeout=60)
        os.close(leader)
        return proc.returncode, seen.decode(errors="replace"), action_estate.store.get(p.id)

    code, text, p = run(b"n\n")
    assert code == 1 and "nothing was signed" in text and p.state == "pending"
    code, text, p = run(b"y\n")
    assert code == 0 and p.state == "approved"
    shown = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert "You sign this approval document:" in shown and "Sign it as alice? [y/N]" in shown
    assert re.search(rf"nonce +{p.nonce}", shown)


@pytest.mark.parametrize("args", [
    pytest.param(("show", "[/]\x1b]0;pwned\x07"), id="show"),
    pytest.param(("approve", "[/]\x1b]0;pwned\x07", "--yes"), id="approve"),
    pytest.param(("reject", "[bold]\x1b[2A\u202e", "--reason", "x"), id="reject"),
])
def test_an_error_shows_the_unknown_id_as_plain_text(action_estate, args):
    """The id is the operator's argv, echoed in the error: plain text, not markup or
    escapes (a `[/]` in it used to end the CLI with a traceback)."""
    done = cli(action_estate, *args)
    assert done.returncode == 2, done.stderr
    assert "error: no proposal" in done.stderr and "\x1b" not in done.stderr
    assert "Traceback" not in done.stderr
    shown = args[1].replace("\x1b", "\\x1b").replace("\x07", "\\x07").replace("\u202e", "\\u202e")
    assert shown in done.stderr, done.stderr


@pytest.mark.parametrize(("reason", "refusal"), [
    pytest.param("wait\x1b[2A", "control_char: U+001B (Cc) at offset 4", id="esc"),
    pytest.param("two\nlines", "control_char: U+000A (Cc) at offset 3", id="newline"),
    pytest.param("\u202eniam", "unicode_format_char: U+202E (Cf) at offset 0", id="bidi"),
])
def test_a_reject_reason_must_be_printable_text_on_one_line(action_estate, reason, refusal):
    p = propose(action_estate)
    done = cli(action_estate, "reject", p.id, "--reason", reason)
    assert done.returncode == 2 and f"the reason refused: {refusal}" in done.stderr, done.stderr
    assert action_estate.store.get(p.id).state == "pending"


def test_a_passphrase_protected_key_through_ssh_askpass(action_estate, tmp_path):
    key = tmp_path / "operator.key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "correct horse", "-f", str(key)],
                   check=True)
    askpass = tmp_path / "askpass"
    askpass.write_text("#!/bin/sh\necho \"$PASSPHRASE\"\n")
    askpass.chmod(0o755)
    enroll(action_estate, "frank", key)
    env = {"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": "none",
           "SSH_AUTH_SOCK": ""}
    p = propose(action_estate)
    args = ("approve", p.id, "--yes", "--as", "frank", "--key", str(key))
    wrong = cli(action_estate, *args, PASSPHRASE="wrong", **env)
    assert wrong.returncode == 2 and "could not sign" in wrong.stderr
    assert action_estate.store.get(p.id).state == "pending"
    done = cli(action_estate, *args, PASSPHRASE="correct horse", **env)
    assert done.returncode == 0, done.stderr
    public = " ".join(Path(f"{key}.pub").read_text().split()[:2])
    assert verifies(action_estate, action_estate.store.get(p.id), public, "frank")


def test_an_agent_signs_when_the_key_setting_is_the_public_half(action_estate, tmp_path):
    key = tmp_path / "agent-op.key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pass phrase", "-f", str(key)],
                   check=True)
    agent = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True, check=True)
    env = dict(line.split(";")[0].split("=", 1) for line in agent.stdout.splitlines()
               if line.startswith(("SSH_AUTH_SOCK=", "SSH_AGENT_PID=")))
    try:
        askpass = tmp_path / "askpass"
        askpass.write_text("#!/bin/sh\necho 'pass phrase'\n")
        askpass.chmod(0o755)
        subprocess.run(["ssh-add", str(key)], env=dict(os.environ, **env, SSH_ASKPASS=str(
            askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY="none"), check=True,
            stdin=subprocess.DEVNULL, capture_output=True)
        key.rename(tmp_path / "elsewhere")  # the private key is not even on this machine now
        enroll(action_estate, "grace", key)
        p = propose(action_estate)
        done = cli(action_estate, "approve", p.id, "--yes", "--as", "grace",
                   LINUX_MCP_OPERATOR_KEY=f"{key}.pub", SSH_ASKPASS_REQUIRE="never", **env)
        assert done.returncode == 0, done.stderr
        public = " ".join(Path(f"{key}.pub").read_text().split()[:2])
        assert verifies(action_estate, action_estate.store.get(p.id), public, "grace")
    finally:
        subprocess.run(["kill", env["SSH_AGENT_PID"]], check=False)


def test_reject_list_show(action_estate):
    a, b = propose(action_estate), propose(action_estate)
    done = cli(action_estate, "reject", a.id, "--reason", "wait for the maintenance window")
    assert done.returncode == 0 and action_estate.store.get(a.id).reason == \
        "wait for the maintenance window"
    assert cli(action_estate, "reject", a.id, "--reason", "again").returncode == 2
    listing = cli(action_estate, "list", COLUMNS="200")
    assert a.id in listing.stdout and b.id in listing.stdout and "rejected" in listing.stdout
    only = cli(action_estate, "list", "--state", "pending")
    assert b.id in only.stdout and a.id not in only.stdout
    shown = cli(action_estate, "show", a.id, COLUMNS="200")
    assert "wait for the maintenance window" in shown.stdout
    assert "pending" in shown.stdout and "rejected" in shown.stdout  # the history
    assert cli(action_estate, "show", "p00000000").returncode == 2


def test_approve_and_execute_at_once(action_estate):
    p = propose(action_estate)
    done = cli(action_estate, "approve", p.id, "--yes", "--execute")
    assert done.returncode == 0, done.stderr
    assert action_estate.store.get(p.id).state == "succeeded"
    assert os.path.exists(action_estate.root.file("a"))


# -- the document is built first, shown from its own bytes, then signed as it is -------------
def test_the_signed_bytes_are_the_drafted_bytes(action_estate, keys):
    from mcp_linux_infra.approvals.decide import draft, sign_draft

    p = propose(action_estate)
    document = draft(action_estate.store, p.id, 600)
    step = document.fields["steps"][0]
    assert step["host"] == HOST and step["params"] == p.params
    a = sign_draft(action_estate.store, document, "alice", action_estate.settings.operator_key)
    assert a.document_text == document.text and a.nonce == step["nonce"]
    assert verifies(action_estate, a, keys.public("alice"), "alice")


@pytest.mark.parametrize(("change", "code"), [
    pytest.param(("state", "rejected"), "not_pending", id="rejected"),
    pytest.param(("document_text", '{"v":2}'), "document_changed", id="document-replaced"),
])
def test_a_row_changed_after_the_screen_is_not_approved(action_estate, change, code):
    from mcp_linux_infra.approvals.decide import draft, sign_draft
    from mcp_linux_infra.approvals.store import ApprovalRefused

    p = propose(action_estate)
    document = draft(action_estate.store, p.id, 600)
    column, value = change
    db = sqlite3.connect(action_estate.settings.state_dir / "approvals.sqlite3")
    with db:
        db.execute(f"UPDATE proposals SET {column} = ? WHERE id = ?", (value, p.id))
    db.close()
    with pytest.raises(ApprovalRefused) as err:
        sign_draft(action_estate.store, document, "alice", action_estate.settings.operator_key)
    assert err.value.code == code
    assert action_estate.store.get(p.id).approvals == []
    assert action_estate.store.signatures(p.id) == []


def test_a_window_that_closed_while_the_screen_was_read_is_not_signed(action_estate):
    from mcp_linux_infra.approvals.decide import Draft, draft, sign_draft
    from mcp_linux_infra.errors import UserError

    p = propose(action_estate)
    key = action_estate.settings.operator_key
    stale = draft(action_estate.store, p.id, 60, now=int(time.time()) - 120)
    with pytest.raises(UserError, match="window closed"):
        sign_draft(action_estate.store, stale, "alice", key)
    loose = Draft(json.dumps(draft(action_estate.store, p.id, 600).fields, indent=1))
    with pytest.raises(UserError, match="canonical"):
        sign_draft(action_estate.store, loose, "alice", key)
    assert action_estate.store.get(p.id).state == "pending"


# -- each operator under their own principal and key ----------------------------------------
def test_a_second_operator_adds_the_second_approval(action_estate, keys):
    p = action_estate.store.create(HOST, "touch_file", {"file": action_estate.root.file("a")},
                                   "the file is missing, see the log", 3600, required=2)
    first = cli(action_estate, "approve", p.id, "--yes", "--execute", COLUMNS="200")
    assert first.returncode == 0, first.stderr
    assert "1 of 2 approvals" in first.stderr and "another operator must approve" in first.stderr
    assert "not executed" in first.stderr and action_estate.root.log() == []
    assert action_estate.store.get(p.id).state == "pending"
    again = cli(action_estate, "approve", p.id, "--yes", "--as", "alice")
    assert again.returncode == 2 and "already_approved: alice already approved" in again.stderr
    shown = cli(action_estate, "show", p.id, COLUMNS="200")
    assert "1 of 2 approvals" in shown.stdout and "alice (cli, ssh-ed25519" in shown.stdout
    assert "approval_added" in shown.stdout
    listed = cli(action_estate, "list", COLUMNS="200")
    assert re.search(rf"{p.id} .* pending .* 1/2 ", listed.stdout), listed.stdout
    second = cli(action_estate, "approve", p.id, "--yes", "--as", "bob", "--key",
                 str(keys.dir / "bob"), COLUMNS="200")
    assert second.returncode == 0, second.stderr
    assert "approved" in second.stderr and "2 of 2 approvals" in second.stderr
    a = action_estate.store.get(p.id)
    assert a.state == "approved" and a.principals == ["alice", "bob"]
    assert verifies(action_estate, a, keys.public("alice"), "alice", 0)
    assert verifies(action_estate, a, keys.public("bob"), "bob", 1)
    assert [t["actor"] for t in action_estate.store.history(p.id)][-2:] == [
        "operator:bob", "operator:bob"]


@pytest.mark.parametrize(("args", "said"), [
    pytest.param(("--as", "bob"), "is not bob's registered key", id="someone-elses-key"),
    pytest.param(("--as", "mallory"), "unknown_operator: 'mallory' is not a registered",
                 id="unknown-operator"),
    pytest.param(("--as", ".x"), "an operator name is", id="bad-name"),
])
def test_signing_as_someone_else_is_refused_before_signing(action_estate, args, said):
    p = propose(action_estate)
    done = cli(action_estate, "approve", p.id, "--yes", *args)
    assert done.returncode == 2 and said in " ".join(done.stderr.split()), done.stderr
    assert "Traceback" not in done.stderr
    assert action_estate.store.get(p.id).approvals == []


def test_an_sk_ed25519_security_key_signs_through_ssh_keygen(action_estate, tmp_path):
    """An operator whose key is an sk-ed25519 security key (here the simulated one of
    sk_support, behind ssh-keygen's provider interface): `approve --as --key` signs with it,
    the store takes it as that key type, and the target accepts it."""
    library = build_provider(tmp_path)
    key = new_key(library, tmp_path / "id_ed25519_sk")
    new_key(library, tmp_path / "another")  # a second credential: the key handle decides
    public = " ".join(Path(f"{key}.pub").read_text().split()[:2])
    enroll(action_estate, "sam", key)
    signers = action_estate.root.path / "etc/mcp-infra/allowed_signers"
    signers.write_text(signers.read_text() + f"sam {public}\n")
    p = propose(action_estate)
    done = cli(action_estate, "approve", p.id, "--yes", "--as", "sam", "--key", str(key),
               "--execute", SSH_SK_PROVIDER=str(library))
    assert done.returncode == 0, done.stderr
    a = action_estate.store.get(p.id)
    assert a.state == "succeeded" and a.principals == ["sam"]
    assert a.approvals[0]["key_type"] == "sk-ssh-ed25519@openssh.com"
    assert verifies(action_estate, a, public, "sam")
    signer = action_estate.root.log()[-1]["signers"][0]
    assert (signer["principal"], signer["signature_type"], signer["flags"]) == (
        "sam", "sk-ssh-ed25519@openssh.com", 0x01)


def test_list_and_show_as_json(action_estate, keys):
    from datetime import datetime

    a, b = propose(action_estate), propose(action_estate)
    assert cli(action_estate, "approve", a.id, "--yes").returncode == 0
    listed = json.loads(cli(action_estate, "list", "--json").stdout)["proposals"]
    assert [p["id"] for p in listed] == [b.id, a.id]  # newest first
    approved = listed[1]
    assert approved["state"] == "approved" and approved["host"] == HOST
    assert approved["params"] == {"file": action_estate.root.file("a")}
    assert approved["approvals"][0]["principal"] == "alice"
    for stamp in (approved["created_at"], approved["not_after"], approved["approvals"][0]["at"]):
        assert datetime.fromisoformat(stamp).utcoffset().total_seconds() == 0
    assert listed[0]["not_after"] is None and "document_text" not in approved
    pending = json.loads(cli(action_estate, "list", "--state", "pending", "--json").stdout)
    assert [p["id"] for p in pending["proposals"]] == [b.id]
    shown = cli(action_estate, "show", a.id, "--json")
    assert shown.returncode == 0 and shown.stderr == ""
    data = json.loads(shown.stdout)
    assert data["proposal"]["id"] == a.id
    assert data["history"][0]["to_state"] == "pending"
    assert all(datetime.fromisoformat(t["at"]) for t in data["history"])
