"""Operator signatures: `ssh-keygen -Y find-principals` and `-Y verify` against the host's
allowed_signers. Who signed is learned from allowed_signers (find-principals), never from
what the client says; v1 documents name their approver, which is verified as such.

ssh-keygen exits 255 for every failure; the reason is only in its stderr, whose wording may
change between OpenSSH releases. The mapping below is used for the refusal reason only: any
unrecognised failure is still a refusal. The client gets a fixed text per reason; the raw
stderr (file paths, line numbers) goes to the root-owned log only.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from mcp_infra_target.actions.approval import NAMESPACE, PRINCIPAL_RE
from mcp_infra_target.actions.sshsig import ARMOR_RE
from mcp_infra_target.core.refusal import Refusal

KEYGEN = "/usr/bin/ssh-keygen"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "LC_ALL": "C"}
TIMEOUT_SECONDS = 10
FINGERPRINT_RE = re.compile(r" key (SHA256:[A-Za-z0-9+/]{43})")
# (stderr fragment, reason, text for the client); first match wins
STDERR_REASONS = (
    ("not permitted for use in signature namespace", "unknown_signer",
     "key not allowed to sign approvals"),
    ("namespace does not match", "wrong_namespace", "signature made for another namespace"),
    ("key has expired", "signer_not_valid", "signer key outside its validity period"),
    ("key is not yet valid", "signer_not_valid", "signer key outside its validity period"),
)
FINAL_LINE = "could not verify signature."


def classify(stderr: str) -> Refusal:
    """Map a failed verification's stderr to a refusal.

    A good signature by a key that allowed_signers does not list for the approver fails
    silently (only the final line); any other unexplained message means a bad signature.
    """
    lowered = stderr.lower()
    for fragment, reason, text in STDERR_REASONS:
        if fragment in lowered:
            return Refusal(reason, "signature/verify", text)
    if not lowered.replace(FINAL_LINE, "").strip():
        return Refusal("unknown_signer", "signature/verify",
                       "no key allowed for this approver made this signature")
    return Refusal("bad_signature", "signature/verify", "signature does not match the document")


def _run(argv: list[str], document: bytes) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, input=document, capture_output=True, env=ENV, cwd="/",
                              timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise Refusal("bad_signature", "signature/verify", "verification timed out") from None
    except OSError:
        raise Refusal("config_error", "config/ssh-keygen", "cannot run ssh-keygen") from None


def _find_principal(sigfile: str, allowed_signers: str, details: dict[str, str]) -> str:
    """The one principal allowed_signers lists for the signature's key."""
    proc = _run([KEYGEN, "-Y", "find-principals", "-f", allowed_signers, "-s", sigfile], b"")
    stderr = proc.stderr.decode("utf-8", "replace")
    details["ssh_keygen_find"] = stderr[:1024]
    names = proc.stdout.decode("utf-8", "replace").split()
    if proc.returncode != 0 or not names:
        refusal = classify(stderr)
        if refusal.reason == "bad_signature":  # no line lists this key
            refusal = Refusal("unknown_signer", "signature/find-principals",
                              "allowed_signers lists no operator with this key")
        raise refusal
    if len(names) != 1 or not PRINCIPAL_RE.match(names[0]):
        raise Refusal("ambiguous_signer", "config/allowed_signers",
                      "allowed_signers lists this key for more than one operator")
    return names[0]


def verify(document: bytes, signature: str, approver: str | None, allowed_signers: str,
           scratch_parent: str, details: dict[str, str]) -> tuple[str, str]:
    """Verify `signature` over `document`; return (principal, key fingerprint). The principal
    is `approver` (a v1 document names it) or, when None, the one allowed_signers lists for
    the signature's key.

    `details` receives ssh-keygen's stderr for the log. The signature file lives in a fresh
    0700 directory under `scratch_parent` (root-only writable) and is removed afterwards.
    """
    if not ARMOR_RE.match(signature):
        raise Refusal("bad_signature", "signature/verify", "malformed signature")
    if not os.path.isfile(allowed_signers):
        raise Refusal("config_error", "config/allowed_signers", "no allowed_signers on this host")
    workdir = tempfile.mkdtemp(prefix="pra-run.", dir=scratch_parent)
    try:
        sigfile = os.path.join(workdir, "approval.sig")
        fd = os.open(sigfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(signature)
        principal = approver or _find_principal(sigfile, allowed_signers, details)
        proc = _run([KEYGEN, "-Y", "verify", "-f", allowed_signers, "-I", principal,
                     "-n", NAMESPACE, "-s", sigfile], document)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    stdout = proc.stdout.decode("utf-8", "replace")
    details["ssh_keygen"] = (proc.stderr.decode("utf-8", "replace") + stdout)[:2048]
    good = 'Good "%s" signature for %s with ' % (NAMESPACE, principal)
    if proc.returncode != 0 or not stdout.startswith(good):
        raise classify(proc.stderr.decode("utf-8", "replace"))
    match = FINGERPRINT_RE.search(stdout)
    return principal, match.group(1) if match else ""
