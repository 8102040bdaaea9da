"""The browser harness proven on its own, without the console: a tiny page (served at
http://localhost:PORT, a secure context) enrolls a P-256 credential with Chromium's virtual
authenticator and signs, with WebAuthn, the SSHSIG signed-data blob it computes itself
(WebCrypto SHA-512) from the document it displays. The test repacks the assertion into a
webauthn-sk-ecdsa SSHSIG and real `ssh-keygen -Y verify` checks it against an
allowed_signers line built from the credential's SPKI: the facts of
/work/shared/notes/webauthn-approvals.md, checked again with this Chromium."""
from __future__ import annotations

import json
import struct

import pytest
from browser_support import VIEWPORT, b64url_decode
from signing_page_support import (
    SigningPage,
    click_and_wait,
    enroll,
    key_blob,
    repack,
    signers_line,
)
from sshsig_support import AT, ED, UP, UV, b64url, signed_data, ssh_keygen_verify

from mcp_linux_infra.console.webauthn import Assertion, WebAuthnRefused
from mcp_linux_infra.console.webauthn import key_line as key_line_of

# Non-ASCII, markup and JSON escapes on purpose: the page must hash exactly these UTF-8 bytes.
DOCUMENT = json.dumps({"v": 2, "id": "p-browser-1", "approvals": 1, "not_before": 1,
                       "not_after": 2, "steps": [{"host": "web-1", "action": "restart_service",
                                                  "params": {"unit": "caf\u00e9 <b>&amp;\t"},
                                                  "nonce": "n-1"}]},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@pytest.fixture(scope="module")
def page():
    with SigningPage(DOCUMENT) as served:
        yield served


def signers(tmp_path, credential, application="localhost"):
    path = tmp_path / "allowed_signers"
    path.write_text(signers_line("alice", credential, application))
    return path


def test_browser_assertion_is_an_sshsig_that_ssh_keygen_verifies(tab, page, tmp_path):
    credential, authenticator = enroll(tab, page, "alice \u00e9")
    assert credential["algorithm"] == -7
    stored = authenticator.credentials()
    assert [(c["rpId"], c["isResidentCredential"]) for c in stored] == [("localhost", True)]
    assert b64url(b64url_decode(stored[0]["credentialId"])) == credential["id"]

    assertion = click_and_wait(tab, "#sign")
    assert isinstance(assertion, dict), assertion
    auth_data = b64url_decode(assertion["authenticatorData"])
    client_data = b64url_decode(assertion["clientDataJSON"])
    signature = repack(assertion, key_blob(credential))

    # what the page signed: the blob of the document it displays, at this origin
    document = DOCUMENT.encode("utf-8")
    challenge = b64url(signed_data(document))
    prefix = f'{{"type":"webauthn.get","challenge":"{challenge}","origin":"{page.url}"'.encode()
    assert client_data.startswith(prefix), client_data
    flags = auth_data[32]
    assert flags & (UP | UV) == UP | UV and not flags & (AT | ED), hex(flags)
    assert authenticator.credentials()[0]["signCount"] >= 1

    good = ssh_keygen_verify(signers(tmp_path, credential), "alice", document, signature,
                             tmp_path)
    assert good.returncode == 0, good.stderr
    assert b'Good "mcp-linux-infra-approval" signature for alice with ECDSA-SK key' in good.stdout
    changed = ssh_keygen_verify(signers(tmp_path, credential), "alice",
                                document.replace(b"n-1", b"n-2"), signature, tmp_path)
    assert changed.returncode != 0


def test_key_line_with_another_application_does_not_verify(tab, page, tmp_path):
    """The key's application must be the RP ID: `ssh:` (what ssh-keygen -K would make) fails."""
    credential, _ = enroll(tab, page)
    assertion = click_and_wait(tab, "#sign")
    signature = repack(assertion, key_blob(credential, "ssh:"))
    result = ssh_keygen_verify(signers(tmp_path, credential, "ssh:"), "alice",
                               DOCUMENT.encode(), signature, tmp_path)
    assert result.returncode != 0


def test_required_verification_refused_when_the_user_is_not_verified(tab, page):
    """With the authenticator failing verification, a request that requires it gets no
    assertion at all: Chromium rejects it (NotAllowedError)."""
    _, authenticator = enroll(tab, page)
    authenticator.set_user_verified(False)
    assert click_and_wait(tab, "#sign") == "NotAllowedError"


def test_flags_without_verification_still_verify_with_ssh_keygen(tab, page, tmp_path):
    """A page that does not require verification gets an assertion with presence only; stock
    ssh-keygen accepts it anyway (OpenSSH 9.2 checks no flags), so the target must."""
    credential, authenticator = enroll(tab, page, query="?uv=discouraged")
    authenticator.set_user_verified(False)
    assertion = click_and_wait(tab, "#sign")
    assert isinstance(assertion, dict), assertion
    assert b64url_decode(assertion["authenticatorData"])[32] & (UP | UV) == UP
    result = ssh_keygen_verify(signers(tmp_path, credential), "alice", DOCUMENT.encode(),
                               repack(assertion, key_blob(credential)), tmp_path)
    assert result.returncode == 0, result.stderr


def test_screenshot_is_a_png_of_the_viewport(tab, page, tmp_path):
    tab.navigate(page.url)
    data = tab.screenshot(tmp_path / "page.png", full_page=False).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == VIEWPORT
    assert tab.text("#document") == DOCUMENT


def test_the_consoles_repacking_of_a_browser_assertion(tab, page, tmp_path):
    """The console's relying-party check and repacking (console/webauthn.py) take this
    Chromium's assertion as it is, and give the same SSHSIG as the independent repacking."""
    credential, _ = enroll(tab, page)
    assertion = click_and_wait(tab, "#sign")
    key_line = key_line_of(b64url_decode(credential["publicKey"]), "localhost")
    received = Assertion.from_json(assertion)
    received.check(key_line, "localhost", page.url, signed_data(DOCUMENT.encode()))
    signature = received.sshsig(key_line, page.url)
    assert signature == repack(assertion, key_blob(credential))
    with pytest.raises(WebAuthnRefused) as refused:
        received.check(key_line, "localhost", page.url, signed_data(b"another document"))
    assert refused.value.code == "wrong_challenge"
