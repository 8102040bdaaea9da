"""A tiny page that signs, with WebAuthn, the document it displays: the browser side of a
console approval reduced to its core, for the harness's own tests and the target's.

`SigningPage` serves at http://localhost:PORT (a secure context) a page whose `<pre
id="document">` shows `page.document` (HTML-escaped), and a script (no inline script: the
page's CSP is as strict as the console's) that enrolls a P-256 credential (alg -7 only, user
verification and a resident key required) and signs the SSHSIG signed-data blob it computes
itself (WebCrypto SHA-512) from the displayed text. `?uv=discouraged` asks for an assertion
without user verification. The test side: `enroll`, `sign` (buttons clicked in a `Tab`), and
`key_blob`/`repack` into what a target receives.
"""
from __future__ import annotations

import base64
import html
import json

from browser_support import AsgiServer, Tab, VirtualAuthenticator, b64url_decode
from sshsig_support import NAMESPACE, SK_ECDSA, sk_ecdsa_key_blob, webauthn_sshsig
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

RP_ID = "localhost"
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




class SigningPage(AsgiServer):
    """The page, served; set `document` to the text it shows (and signs)."""

    def __init__(self, document: str = "{}"):
        self.document = document
        super().__init__(Starlette(routes=[Route("/", self._page),
                                           Route("/page.js", self._script)]))

    async def _page(self, request):
        return HTMLResponse(PAGE.format(document=html.escape(self.document)),
                            headers={"Content-Security-Policy": CSP})

    async def _script(self, request):
        return Response(SCRIPT, media_type="text/javascript",
                        headers={"Content-Security-Policy": CSP})


def click_and_wait(tab: Tab, button: str) -> dict | str:
    """Click a button; the page's answer (JSON), or the name of the error it showed."""
    tab.click(button)
    tab.wait_for("document.getElementById('result').textContent"
                 " || document.getElementById('error').textContent")
    error = tab.text("#error")
    return error if error else json.loads(tab.text("#result"))


def enroll(tab: Tab, page: SigningPage, name: str = "alice",
           query: str = "") -> tuple[dict, VirtualAuthenticator]:
    """A new virtual authenticator for the tab, and the credential it registered on the page:
    {id, publicKey (SPKI DER, base64url), algorithm}."""
    authenticator = tab.add_authenticator()
    tab.navigate(f"{page.url}/{query}")
    tab.type_text("#user", name)
    credential = click_and_wait(tab, "#enroll")
    assert isinstance(credential, dict), credential
    return credential, authenticator


def key_blob(credential: dict, application: str = RP_ID) -> bytes:
    """The credential's sk-ecdsa key (application = the RP ID, unless told otherwise)."""
    return sk_ecdsa_key_blob(b64url_decode(credential["publicKey"]), application)


def signers_line(principal: str, credential: dict, application: str = RP_ID) -> str:
    """The credential's allowed_signers line."""
    blob = base64.b64encode(key_blob(credential, application)).decode("ascii")
    return f'{principal} namespaces="{NAMESPACE}" {SK_ECDSA} {blob}\n'


def repack(assertion: dict, blob: bytes) -> str:
    """The page's assertion as the webauthn-sk-ecdsa SSHSIG a target receives."""
    return webauthn_sshsig(blob, b64url_decode(assertion["clientDataJSON"]),
                           b64url_decode(assertion["authenticatorData"]),
                           b64url_decode(assertion["signature"]))


def sign(tab: Tab, credential: dict) -> str:
    """Press sign on the loaded page; the SSHSIG of the document it shows."""
    assertion = click_and_wait(tab, "#sign")
    assert isinstance(assertion, dict), assertion
    return repack(assertion, key_blob(credential))
