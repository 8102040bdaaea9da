// The console's only script (CSP: script-src 'self'). Login, enrollment and approval with
// WebAuthn. Approving: what you see is what you sign. The page reads the document it shows
// (#document), builds the SSHSIG signed-data blob itself with WebCrypto, and asks the
// authenticator to sign that blob (user verification required); the server only repacks.
"use strict";

const NAMESPACE = "mcp-linux-infra-approval";
// Characters Python's str.isprintable rejects (the server's rule): controls, format (bidi,
// zero-width), surrogates, private use, unassigned, line/paragraph separators, spaces but " ".
const UNPRINTABLE = /[\p{C}\p{Zl}\p{Zp}]|(?! )\p{Zs}/u;

function b64url(bytes) {
  let text = "";
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function unb64url(text) {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

// #status: the last result or error code alone (what tests read); #message: its sentence.
function status(code, isError, message) {
  const el = document.getElementById("status");
  if (el) {
    el.textContent = code;
    el.className = isError ? "error" : "ok";
  }
  const detail = document.getElementById("message");
  if (detail) detail.textContent = message || "";
}

function csrf() {
  const meta = document.querySelector('meta[name="csrf"]');
  return meta ? meta.content : "";
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = {}; }
  if (!response.ok) {
    const error = new Error(data.message || response.statusText);
    error.code = data.error || String(response.status);
    throw error;
  }
  return data;
}

// SSH wire string: uint32 big-endian length, then the bytes.
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

// PROTOCOL.sshsig: "SSHSIG" || string(namespace) || string("") || string("sha512")
// || string(SHA-512(message)).
async function signedData(message, namespace) {
  const enc = new TextEncoder();
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-512", message));
  return concat([enc.encode("SSHSIG"), sshString(enc.encode(namespace)),
                 sshString(new Uint8Array(0)), sshString(enc.encode("sha512")),
                 sshString(digest)]);
}

function assertionJSON(credential) {
  const r = credential.response;
  return {id: b64url(credential.rawId), clientDataJSON: b64url(r.clientDataJSON),
          authenticatorData: b64url(r.authenticatorData), signature: b64url(r.signature),
          userHandle: r.userHandle ? b64url(r.userHandle) : null};
}

function failed(error) {
  // a refusal of the console (its code), or the browser's (NotAllowedError: cancelled, ...)
  status(error.code || String(error.name || "error"), true, error.message || "");
}

async function login(main) {
  try {
    const options = (await post("/login/begin")).publicKey;
    options.challenge = unb64url(options.challenge);
    const credential = await navigator.credentials.get({publicKey: options});
    await post("/login/finish", assertionJSON(credential));
    const next = main.dataset.next || "/";
    window.location.assign(/^\/p\/[A-Za-z0-9_-]{1,64}$/.test(next) ? next : "/");
  } catch (error) { failed(error); }
}

async function enroll(main) {
  const base = "/enroll/" + encodeURIComponent(main.dataset.token);
  try {
    const options = (await post(base + "/begin")).publicKey;
    options.challenge = unb64url(options.challenge);
    options.user.id = unb64url(options.user.id);
    const credential = await navigator.credentials.create({publicKey: options});
    const r = credential.response;
    const done = await post(base + "/finish", {
      id: b64url(credential.rawId), clientDataJSON: b64url(r.clientDataJSON),
      authenticatorData: b64url(r.getAuthenticatorData()),
      publicKey: b64url(r.getPublicKey()), publicKeyAlgorithm: r.getPublicKeyAlgorithm()});
    document.getElementById("key-line").textContent = done.key_line;
    document.getElementById("ansible").textContent = done.ansible;
    document.getElementById("enrolled").hidden = false;
    document.getElementById("enroll").disabled = true;
    status("enrolled", false, "enrolled as " + done.principal +
           ": give the Ansible entry to an administrator; it counts once deployed");
  } catch (error) { failed(error); }
}

async function approve(main) {
  const text = document.getElementById("document").textContent;
  if (UNPRINTABLE.test(text)) {
    status("unprintable_document", true,
           "this document holds a character that cannot be shown: not signed");
    return;
  }
  const button = document.getElementById("approve");
  button.disabled = true;
  try {
    const blob = await signedData(new TextEncoder().encode(text), main.dataset.namespace);
    const credential = await navigator.credentials.get({publicKey: {
      challenge: blob, rpId: main.dataset.rpId, userVerification: "required", timeout: 120000,
      allowCredentials: [{type: "public-key", id: unb64url(main.dataset.credential)}]}});
    const done = await post("/p/" + encodeURIComponent(main.dataset.proposal) + "/approve",
                            assertionJSON(credential));
    document.getElementById("approvals").textContent =
      done.approvals + " of " + done.required + " approvals";
    status(done.state, false, done.approvals + " of " + done.required + " approvals");
  } catch (error) {
    button.disabled = false;
    failed(error);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const main = document.querySelector("main");
  const bind = (id, fn) => {
    const el = document.getElementById(id);
    if (el) el.addEventListener("click", () => fn(main));
  };
  bind("login", login);
  bind("enroll", enroll);
  bind("approve", approve);
});
