"""The browser harness proven on its own, without the console: a tiny page (served at
http://localhost:PORT, a secure context) enrolls a P-256 credential with Chromium's virtual
authenticator and signs, with WebAuthn, the SSHSIG signed-data blob it computes itself
(WebCrypto SHA-512) from the document it displays. The test repacks the assertion into a
webauthn-sk-ecdsa SSHSIG and real `ssh-keygen -Y verify` checks it against an
allowed_signers line built from the credential's SPKI: the facts of
/work/shared/notes/webauthn-approvals.md, checked again with this Chromium."""
from __future__ import annotations

import base64
import html
import json
import struct

import pytest
from browser_support import VIEWPORT, AsgiServer, b64url_decode
from sshsig_support import (
    AT,
    ED,
    NAMESPACE,
    SK_ECDSA,
    UP,
    UV,
    b64url,
    signed_data,
    sk_ecdsa_key_blob,
    ssh_keygen_verify,
    webauthn_sshsig,
)
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

# Non-ASCII and JSON escapes on purpose: the page must hash exactly these UTF-8 bytes.
DOCUMENT = json.dumps({"v": 2, "id": "p-browser-1", "approvals": 1, "not_before": 1,
                       "not_after": 2, "steps": [{"host": "web-1", "action": "restart_service",
                                                  "params": {"unit": "caf\u00e9 <b>&amp;"},
                                                  "nonce": "n-1"}]},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>harness</title>
<script src="/page.js" defer></script></head><body>
<pre id="document">{document}</pre>
<input id="user" autocomplete="off"><button id="enroll">enroll</button>
<button id="sign">sign</button><pre id="result"></pre><p id="error"></p>
</body></html>"""

SCRIPT = r"""
"use strict";
const NS = "mcp-linux-infra-approval";
const utf8 = new TextEncoder();
const params = new URLSearchParams(location.search);
const b64url = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
function sshString(bytes) {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}
function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
async function signedData(text) {   // PROTOCOL.sshsig: what the SSHSIG signs
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-512", utf8.encode(text)));
  return concat([utf8.encode("SSHSIG"), sshString(utf8.encode(NS)), sshString(new Uint8Array()),
                 sshString(utf8.encode("sha512")), sshString(hash)]);
}
let credentialId = null;
async function enroll() {
  const name = document.getElementById("user").value;
  const credential = await navigator.credentials.create({publicKey: {
    challenge: crypto.getRandomValues(new Uint8Array(32)),
    rp: {id: location.hostname, name: "harness"},
    user: {id: utf8.encode(name), name: name, displayName: name},
    pubKeyCredParams: [{type: "public-key", alg: -7}],
    authenticatorSelection: {userVerification: "required", residentKey: "required"},
    attestation: "none", timeout: 30000}});
  credentialId = credential.rawId;
  return {id: b64url(credential.rawId), publicKey: b64url(credential.response.getPublicKey()),
          algorithm: credential.response.getPublicKeyAlgorithm()};
}
async function sign() {
  const text = document.getElementById("document").textContent;
  const assertion = await navigator.credentials.get({publicKey: {
    challenge: await signedData(text), rpId: location.hostname,
    allowCredentials: [{type: "public-key", id: credentialId}],
    userVerification: params.get("uv") || "required", timeout: 30000}});
  const r = assertion.response;
  return {id: b64url(assertion.rawId), clientDataJSON: b64url(r.clientDataJSON),
          authenticatorData: b64url(r.authenticatorData), signature: b64url(r.signature)};
}
for (const [id, action] of [["enroll", enroll], ["sign", sign]]) {
  document.getElementById(id).addEventListener("click", async () => {
    document.getElementById("result").textContent = "";
    document.getElementById("error").textContent = "";
    try {
      document.getElementById("result").textContent = JSON.stringify(await action());
    } catch (e) {
      document.getElementById("error").textContent = e.name;
    }
  });
}
"""


async def page(request):
    return HTMLResponse(PAGE.format(document=html.escape(DOCUMENT)),
                        headers={"Content-Security-Policy": CSP})


async def script(request):
    return Response(SCRIPT, media_type="text/javascript",
                    headers={"Content-Security-Policy": CSP})


@pytest.fixture(scope="module")
def site():
    with AsgiServer(Starlette(routes=[Route("/", page), Route("/page.js", script)])) as server:
        yield server


def click_and_wait(tab, button: str) -> dict | str:
    """Click a button; the page's answer (JSON), or the error name it showed."""
    tab.click(button)
    tab.wait_for("document.getElementById('result').textContent"
                 " || document.getElementById('error').textContent")
    error = tab.text("#error")
    return error if error else json.loads(tab.text("#result"))


def enroll(tab, site, query: str = "") -> tuple[dict, object]:
    authenticator = tab.add_authenticator()
    tab.navigate(f"{site.url}/{query}")
    tab.type_text("#user", "alice \u00e9")
    credential = click_and_wait(tab, "#enroll")
    assert isinstance(credential, dict), credential
    return credential, authenticator


def allowed_signers(tmp_path, credential: dict, application: str = "localhost") -> tuple:
    """An allowed_signers file for alice's credential, the key's application `application`."""
    key_blob = sk_ecdsa_key_blob(b64url_decode(credential["publicKey"]), application)
    line = f'alice namespaces="{NAMESPACE}" {SK_ECDSA} {base64.b64encode(key_blob).decode()}\n'
    path = tmp_path / "allowed_signers"
    path.write_text(line)
    return path, key_blob


def repack(assertion: dict, key_blob: bytes) -> tuple[str, int, bytes]:
    auth_data = b64url_decode(assertion["authenticatorData"])
    client_data = b64url_decode(assertion["clientDataJSON"])
    signature = webauthn_sshsig(key_blob, client_data, auth_data,
                                b64url_decode(assertion["signature"]))
    return signature, auth_data[32], client_data


def test_browser_assertion_is_an_sshsig_that_ssh_keygen_verifies(tab, site, tmp_path):
    credential, authenticator = enroll(tab, site)
    assert credential["algorithm"] == -7
    stored = authenticator.credentials()
    assert [(c["rpId"], c["isResidentCredential"]) for c in stored] == [("localhost", True)]
    assert b64url(b64url_decode(stored[0]["credentialId"])) == credential["id"]

    assertion = click_and_wait(tab, "#sign")
    assert isinstance(assertion, dict), assertion
    signers, key_blob = allowed_signers(tmp_path, credential)
    signature, flags, client_data = repack(assertion, key_blob)

    # what the page signed: the blob of the document it displays, at this origin
    document = DOCUMENT.encode("utf-8")
    challenge = b64url(signed_data(document))
    prefix = f'{{"type":"webauthn.get","challenge":"{challenge}","origin":"{site.url}"'.encode()
    assert client_data.startswith(prefix), client_data
    assert flags & (UP | UV) == UP | UV and not flags & (AT | ED), hex(flags)
    assert authenticator.credentials()[0]["signCount"] >= 1

    good = ssh_keygen_verify(signers, "alice", document, signature, tmp_path)
    assert good.returncode == 0, good.stderr
    assert b'Good "mcp-linux-infra-approval" signature for alice with ECDSA-SK key' in good.stdout
    changed = ssh_keygen_verify(signers, "alice", document.replace(b"n-1", b"n-2"), signature,
                                tmp_path)
    assert changed.returncode != 0


def test_key_line_with_another_application_does_not_verify(tab, site, tmp_path):
    """The key's application must be the RP ID: `ssh:` (what ssh-keygen -K would make) fails."""
    credential, _ = enroll(tab, site)
    assertion = click_and_wait(tab, "#sign")
    signers, key_blob = allowed_signers(tmp_path, credential, "ssh:")
    signature, _, _ = repack(assertion, key_blob)
    result = ssh_keygen_verify(signers, "alice", DOCUMENT.encode(), signature, tmp_path)
    assert result.returncode != 0


def test_required_verification_refused_when_the_user_is_not_verified(tab, site):
    """With the authenticator failing verification, a request that requires it gets no
    assertion at all: Chromium rejects it (NotAllowedError)."""
    _, authenticator = enroll(tab, site)
    authenticator.set_user_verified(False)
    assert click_and_wait(tab, "#sign") == "NotAllowedError"


def test_flags_without_verification_still_verify_with_ssh_keygen(tab, site, tmp_path):
    """A page that does not require verification gets an assertion with presence only; stock
    ssh-keygen accepts it anyway (OpenSSH 9.2 checks no flags), so the target must."""
    credential, authenticator = enroll(tab, site, "?uv=discouraged")
    authenticator.set_user_verified(False)
    assertion = click_and_wait(tab, "#sign")
    assert isinstance(assertion, dict), assertion
    signers, key_blob = allowed_signers(tmp_path, credential)
    signature, flags, _ = repack(assertion, key_blob)
    assert flags & (UP | UV) == UP, hex(flags)
    result = ssh_keygen_verify(signers, "alice", DOCUMENT.encode(), signature, tmp_path)
    assert result.returncode == 0, result.stderr


def test_screenshot_is_a_png_of_the_viewport(tab, site, tmp_path):
    tab.navigate(site.url)
    data = tab.screenshot(tmp_path / "page.png", full_page=False).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == VIEWPORT
    assert tab.text("#document") == DOCUMENT
