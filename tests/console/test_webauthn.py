"""WebAuthn to OpenSSH: key lines and repacked assertions that stock ssh-keygen verifies, and
the relying party's checks, against the simulated authenticator of the tests."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sshsig_support import UP, UV, signed_data, ssh_keygen_verify
from webauthn_support import AT, Passkey

ED = 0x80

from mcp_linux_infra.console.webauthn import (
    Assertion,
    Registration,
    WebAuthnRefused,
    b64url_decode,
    key_line,
)

ORIGIN = "https://approve.example.com"
RP_ID = "approve.example.com"
DOCUMENT = '{"approvals":1,"id":"p0011aabb","not_after":2,"not_before":1,"steps":[],"v":2}'


@pytest.fixture
def passkey():
    return Passkey(RP_ID, ORIGIN)


def refused(code, call, *args):
    with pytest.raises(WebAuthnRefused) as info:
        call(*args)
    assert info.value.code == code, info.value


def test_the_key_line_of_an_spki_is_the_authenticators_own(passkey):
    assert key_line(passkey.spki(), RP_ID) == passkey.public_line()


def test_a_repacked_assertion_verifies_with_stock_ssh_keygen(passkey, tmp_path):
    line = passkey.public_line()
    signers = tmp_path / "allowed_signers"
    signers.write_text(f'alice namespaces="mcp-linux-infra-approval" {line}\n')
    assertion = Assertion.from_json(passkey.approve(DOCUMENT))
    assertion.check(line, RP_ID, ORIGIN, signed_data(DOCUMENT.encode()))
    signature = assertion.sshsig(line, ORIGIN)
    message = DOCUMENT.encode()
    done = ssh_keygen_verify(signers, "alice", message, signature, tmp_path)
    assert done.returncode == 0, done.stderr
    assert b"ECDSA-SK" in done.stdout + done.stderr
    changed = ssh_keygen_verify(signers, "alice", message.replace(b'"v":2', b'"v":3'),
                                signature, tmp_path)
    assert changed.returncode != 0


def test_the_relying_party_checks(passkey):
    line, challenge = passkey.public_line(), signed_data(DOCUMENT.encode())

    def check(body, **kwargs):
        Assertion.from_json(body).check(line, RP_ID, ORIGIN, challenge, **kwargs)

    check(passkey.approve(DOCUMENT))
    refused("wrong_challenge", check, passkey.approve(DOCUMENT + " "))
    refused("wrong_origin", check, passkey.approve(DOCUMENT, origin="https://evil.example"))
    refused("wrong_rp_id", check, passkey.approve(DOCUMENT, rp_id="evil.example"))
    refused("user_presence_missing", check, passkey.approve(DOCUMENT, flags=UV))
    refused("user_verification_missing", check, passkey.approve(DOCUMENT, flags=UP))
    refused("bad_authenticator_data", check, passkey.approve(DOCUMENT, flags=UP | UV | AT))
    other = Passkey(RP_ID, ORIGIN)
    refused("bad_signature", check, other.approve(DOCUMENT))
    body = passkey.approve(DOCUMENT)
    body["signature"] = body["signature"] + "="
    refused("bad_request", Assertion.from_json, body)


@pytest.mark.parametrize("text", ["", "a", "ab=", "a+b", "a/b", "é", "\n"])
def test_base64url_is_strict(text):
    if text == "":
        assert b64url_decode(text) == b""
        return
    refused("bad_request", b64url_decode, text)


def test_a_registration_gives_the_key_line(passkey):
    challenge = b"c" * 32

    def check(body):
        return Registration.from_json(body).check(RP_ID, ORIGIN, challenge)

    assert check(passkey.register(challenge)) == passkey.public_line()
    refused("wrong_challenge", check, passkey.register(b"d" * 32))
    refused("wrong_origin", check, passkey.register(challenge, origin="https://evil.example"))
    refused("user_verification_missing", check, passkey.register(challenge, flags=UP | AT))
    refused("bad_public_key", check, passkey.register(challenge, spki=Passkey().spki()))
    refused("unsupported_algorithm", check, passkey.register(challenge, algorithm=-257))
    body = passkey.register(challenge)
    body["id"] = "QUJDREVGR0hJSktMTU5PUA"
    refused("bad_authenticator_data", check, body)


def test_extensions_are_carried_into_the_sshsig(passkey, tmp_path):
    """ED set with extension data (a CBOR map): OpenSSH verifies it inside the signature."""
    line = passkey.public_line()
    extensions = bytes.fromhex("a16b6372656450726f7465637401")  # {"credProtect": 1}
    body = passkey.assertion(signed_data(DOCUMENT.encode()), flags=UP | UV | ED,
                             extensions=extensions)
    assertion = Assertion.from_json(body)
    assertion.check(line, RP_ID, ORIGIN, signed_data(DOCUMENT.encode()))
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"alice {line}\n")
    done = ssh_keygen_verify(signers, "alice", DOCUMENT.encode(),
                             assertion.sshsig(line, ORIGIN), tmp_path)
    assert done.returncode == 0, done.stderr
    bad = passkey.assertion(signed_data(DOCUMENT.encode()), flags=UP | UV, extensions=extensions)
    refused("bad_authenticator_data", Assertion.from_json(bad).check, line, RP_ID, ORIGIN,
            signed_data(DOCUMENT.encode()))


def test_a_registration_for_another_rp_id_and_a_non_p256_key_are_refused():
    challenge = b"c" * 32
    elsewhere = Passkey("evil.example", ORIGIN)
    refused("wrong_rp_id", Registration.from_json(elsewhere.register(challenge)).check,
            RP_ID, ORIGIN, challenge)
    ed = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    refused("unsupported_algorithm", key_line, ed, RP_ID)
    refused("bad_public_key", key_line, b"not der", RP_ID)
