"""The tests' independent signer (sshsig_support) makes what stock `ssh-keygen -Y verify`
accepts, and nothing more: each type verifies; a changed message, a substituted challenge, a
key line with another application, or another namespace fail."""
from __future__ import annotations

import pytest
from sshsig_support import NAMESPACE, UP, Authenticator, Ed25519SecurityKey, ssh_keygen_verify

MESSAGE = b'{"v":2,"id":"p"}'


@pytest.fixture(scope="module")
def signers():
    return {"webauthn": Authenticator("approve.example.com"), "sk-ed25519": Ed25519SecurityKey()}


def _verify(tmp_path, line: str, signature: str, message: bytes = MESSAGE):
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'op namespaces="{NAMESPACE}" {line}\n')
    return ssh_keygen_verify(allowed, "op", message, signature, tmp_path)


@pytest.mark.parametrize("signer, make", [
    pytest.param("webauthn", lambda k: k.sign(MESSAGE), id="webauthn"),
    pytest.param("webauthn", lambda k: k.sign(MESSAGE, flags=0, hashalg="sha256"),
                 id="webauthn-no-flags-sha256"),
    pytest.param("webauthn", lambda k: k.sign(MESSAGE, flags=UP | 0x80, extensions=b"\xa0"),
                 id="webauthn-extensions"),
    pytest.param("webauthn", lambda k: k.sign_plain(MESSAGE), id="sk-ecdsa"),
    pytest.param("sk-ed25519", lambda k: k.sign(MESSAGE), id="sk-ed25519"),
])
def test_stock_ssh_keygen_accepts_what_it_makes(signers, tmp_path, signer, make):
    done = _verify(tmp_path, signers[signer].public_line(), make(signers[signer]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f'Good "{NAMESPACE}" signature for op with '.encode())


@pytest.mark.parametrize("make, message", [
    pytest.param(lambda a: a.sign(MESSAGE), MESSAGE + b" ", id="message-changed"),
    pytest.param(lambda a: a.sign(MESSAGE, challenge_message=b"other"), MESSAGE,
                 id="challenge-substituted"),
    pytest.param(lambda a: a.sign(MESSAGE, namespace="file"), MESSAGE, id="other-namespace"),
    pytest.param(lambda a: a.sign_plain(MESSAGE), MESSAGE + b" ", id="plain-message-changed"),
])
def test_stock_ssh_keygen_refuses_what_it_must(signers, tmp_path, make, message):
    done = _verify(tmp_path, signers["webauthn"].public_line(), make(signers["webauthn"]), message)
    assert done.returncode != 0


def test_the_key_application_must_be_the_rp_id(signers, tmp_path):
    """A key line for another RP ID (application) does not verify the same assertion."""
    other = Authenticator("other.example.com")
    other.private = signers["webauthn"].private
    done = _verify(tmp_path, other.public_line(), signers["webauthn"].sign(MESSAGE))
    assert done.returncode != 0
