"""The operator registry: names, key lines, one key one principal, enrollment tokens, and
allowed_signers lines that stock ssh-keygen verifies against. On SQLite and PostgreSQL
(conftest's `database_url`); what is about the SQLite file, on SQLite."""

import base64
import sqlite3
import subprocess

import pytest
from sshsig_support import (
    KEYGEN,
    Authenticator,
    Ed25519SecurityKey,
    ssh_keygen_sign,
    ssh_keygen_verify,
    string,
)

from mcp_linux_infra.database import open_database
from mcp_linux_infra.operators.registry import Registry, RegistryRefused, parse_key_line


@pytest.fixture
def registry(tmp_path, database_url):
    reg = Registry(open_database(database_url, tmp_path, "approvals.sqlite3", "operators"))
    yield reg
    reg.close()


def ed25519_key(tmp_path, name="op"):
    key = tmp_path / name
    subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "a comment", "-f", str(key)],
                   check=True)
    return key, (tmp_path / f"{name}.pub").read_text().strip()


def refused(code, call, *args, **kwargs):
    with pytest.raises(RegistryRefused) as info:
        call(*args, **kwargs)
    assert info.value.code == code, info.value
    return info.value


def test_each_key_kind_is_recorded_without_its_comment(registry, tmp_path):
    _, line = ed25519_key(tmp_path)
    alice = registry.add("alice", line)
    assert (alice.kind, alice.public_key) == ("ed25519", " ".join(line.split()[:2]))
    bob = registry.add("bob@example.com", Ed25519SecurityKey().public_line() + " yubi")
    assert bob.kind == "sk-ed25519"
    webauthn = Authenticator("approve.example.com")
    carol = registry.add("carol", webauthn.public_line(), credential_id="Y3JlZGVudGlhbC0x",
                         rp_id="approve.example.com")
    assert (carol.kind, carol.rp_id) == ("sk-ecdsa", "approve.example.com")
    assert registry.by_credential("Y3JlZGVudGlhbC0x") == carol
    assert registry.get("alice") == alice
    assert [o.name for o in registry.list()] == ["alice", "bob@example.com", "carol"]
    assert registry.allowed_signers_lines() == [
        f'alice namespaces="mcp-linux-infra-approval" {alice.public_key}',
        f'bob@example.com namespaces="mcp-linux-infra-approval" {bob.public_key}',
        f'carol namespaces="mcp-linux-infra-approval" {carol.public_key}']
    fingerprint = subprocess.run([KEYGEN, "-lf", str(tmp_path / "op.pub")], check=True,
                                 capture_output=True, text=True).stdout.split()[1]
    assert alice.fingerprint == fingerprint


def test_the_allowed_signers_lines_verify_real_signatures(registry, tmp_path):
    key, line = ed25519_key(tmp_path)
    registry.add("alice", line)
    passkey = Authenticator("localhost")
    registry.add("bob", passkey.public_line(), rp_id="localhost")
    signers = tmp_path / "allowed_signers"
    signers.write_text("\n".join(registry.allowed_signers_lines()) + "\n")
    message = b'{"v":2}'
    for principal, signature in (("alice", ssh_keygen_sign(key, message)),
                                 ("bob", passkey.sign(message))):
        assert ssh_keygen_verify(signers, principal, message, signature,
                                 tmp_path).returncode == 0
    assert ssh_keygen_verify(signers, "alice", message, passkey.sign(message),
                             tmp_path).returncode != 0


@pytest.mark.parametrize("name", ["", "-alice", "al ice", "a*", "a\nb", "é", "a" * 129,
                                  "alice\u202e"])
def test_names_follow_the_principal_pattern(registry, name):
    refused("bad_name", registry.add, name, Authenticator().public_line())
    refused("bad_name", registry.new_enrollment, name, 60)


def test_key_lines_are_checked_field_by_field(registry, tmp_path):
    ecdsa = subprocess.run([KEYGEN, "-q", "-t", "ecdsa", "-N", "", "-f", str(tmp_path / "e")],
                           check=True)
    assert ecdsa.returncode == 0
    refused("unsupported_key_type", registry.add, "a", (tmp_path / "e.pub").read_text())
    refused("unsupported_key_type", registry.add, "a", "ssh-rsa AAAAB3NzaC1yc2E=")
    refused("bad_key", registry.add, "a", "ssh-ed25519")
    refused("bad_key", registry.add, "a", "ssh-ed25519 not!base64")
    refused("bad_key", registry.add, "a", "ssh-ed25519 AAAA\nssh-ed25519 AAAA")
    wrong_type = base64.b64encode(string("sk-ssh-ed25519@openssh.com") + string(b"k" * 32)
                                  ).decode()
    refused("bad_key", registry.add, "a", f"ssh-ed25519 {wrong_type}")
    short = base64.b64encode(string("ssh-ed25519") + string(b"k" * 31)).decode()
    refused("bad_key", registry.add, "a", f"ssh-ed25519 {short}")
    trailing = base64.b64encode(string("ssh-ed25519") + string(b"k" * 32) + b"\0").decode()
    refused("bad_key", registry.add, "a", f"ssh-ed25519 {trailing}")
    not_on_curve = base64.b64encode(
        string("sk-ecdsa-sha2-nistp256@openssh.com") + string("nistp256")
        + string(b"\x04" + b"\x01" * 64) + string("localhost")).decode()
    refused("bad_key", registry.add, "a", f"sk-ecdsa-sha2-nistp256@openssh.com {not_on_curve}")
    bad_application = base64.b64encode(
        string("sk-ssh-ed25519@openssh.com") + string(b"k" * 32) + string("ssh:\x1b")).decode()
    refused("bad_key", registry.add, "a", f"sk-ssh-ed25519@openssh.com {bad_application}")
    assert registry.list() == []


def test_one_key_names_one_principal(registry):
    passkey = Authenticator()
    registry.add("alice", passkey.public_line(), credential_id="Y3JlZGVudGlhbC0x")
    refused("key_taken", registry.add, "bob", passkey.public_line())
    refused("operator_exists", registry.add, "alice", Authenticator().public_line())
    refused("credential_taken", registry.add, "bob", Authenticator().public_line(),
            credential_id="Y3JlZGVudGlhbC0x")
    refused("rp_id_mismatch", registry.add, "bob", Authenticator("other.example").public_line(),
            rp_id="localhost")
    refused("bad_credential", registry.add, "bob", Authenticator().public_line(),
            credential_id="short")


def test_revoked_operators_leave_the_list_and_keep_their_key(registry):
    passkey = Authenticator()
    registry.add("alice", passkey.public_line())
    revoked = registry.revoke("alice")
    assert revoked.revoked_at is not None
    assert registry.get("alice").revoked_at is not None
    assert registry.allowed_signers_lines() == []
    refused("operator_revoked", registry.revoke, "alice")
    refused("unknown_operator", registry.revoke, "nobody")
    refused("key_taken", registry.add, "bob", passkey.public_line())
    fresh = registry.add("alice", Authenticator().public_line())  # recovery: a new key
    assert registry.get("alice") == fresh
    assert [o.revoked_at is None for o in registry.list()] == [False, True]
    assert len(registry.list(include_revoked=False)) == 1


def test_an_enrollment_token_works_once_and_is_stored_hashed(tmp_path):
    registry = Registry(tmp_path / "approvals.sqlite3")
    token = registry.new_enrollment("alice", 600)
    assert registry.peek_enrollment(token) == "alice"
    assert registry.take_enrollment(token) == "alice"
    refused("enrollment_used", registry.take_enrollment, token)
    refused("enrollment_unknown", registry.take_enrollment, token + "x")
    with sqlite3.connect(tmp_path / "approvals.sqlite3") as db:
        stored = [r[0] for r in db.execute("SELECT token_sha256 FROM enrollments")]
        dump = "\n".join(db.iterdump())
    assert len(stored) == 1 and token not in dump


def test_an_enrollment_expires_and_a_newer_one_replaces_it(registry, monkeypatch):
    import mcp_linux_infra.operators.registry as module

    old = registry.new_enrollment("alice", 600)
    new = registry.new_enrollment("alice", 600)
    refused("enrollment_used", registry.peek_enrollment, old)
    now = module.time.time()
    monkeypatch.setattr(module.time, "time", lambda: now + 601)
    refused("enrollment_expired", registry.take_enrollment, new)
    refused("bad_ttl", registry.new_enrollment, "alice", 0)


def test_completing_an_enrollment_adds_the_key_in_the_same_transaction(registry):
    taken = Authenticator()
    registry.add("bob", taken.public_line())
    token = registry.new_enrollment("alice", 600)
    refused("key_taken", registry.complete_enrollment, token, taken.public_line())
    assert registry.peek_enrollment(token) == "alice"  # a refused key leaves it usable
    passkey = Authenticator()
    name, operator = registry.complete_enrollment(token, passkey.public_line(),
                                                  credential_id="Y3JlZGVudGlhbC0y",
                                                  rp_id="localhost")
    assert (name, operator.kind, operator.rp_id) == ("alice", "sk-ecdsa", "localhost")
    refused("enrollment_used", registry.complete_enrollment, token,
            Authenticator().public_line())
    refused("operator_exists", registry.new_enrollment, "alice", 600)


def test_revoking_cancels_outstanding_links(registry):
    token = registry.new_enrollment("alice", 600)
    assert registry.cancel_enrollments("alice") == 1
    refused("enrollment_used", registry.take_enrollment, token)


def test_a_second_process_sees_the_same_operators(tmp_path):
    registry = Registry(tmp_path / "approvals.sqlite3")
    registry.add("alice", Authenticator().public_line())
    other = Registry(tmp_path / "approvals.sqlite3")
    try:
        assert other.get("alice") == registry.get("alice")
        with sqlite3.connect(tmp_path / "approvals.sqlite3") as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_parse_key_line_reports_the_application():
    assert parse_key_line(Authenticator("approve.example.com").public_line())[1:] == (
        "sk-ecdsa", "approve.example.com")
    assert parse_key_line(Ed25519SecurityKey().public_line())[1:] == ("sk-ed25519", "ssh:")
