"""The server's own check of an approval signature before it is stored: stock
`ssh-keygen -Y verify` against the one key the operators registry holds for the principal.

The target decides anyway (it verifies every signature against its allowed_signers); this
check only keeps the store from collecting signatures that cannot count: a signature by
another key than the operator's, over other bytes, or in another namespace.
"""

import re
import subprocess
import tempfile
from pathlib import Path

from mcp_infra_target.actions import sshsig
from mcp_infra_target.actions.approval import PRINCIPAL_RE
from mcp_infra_target.core.refusal import Refusal

from mcp_linux_infra.approvals.document import NAMESPACE
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.programs import require

KEY_LINE = re.compile(r"\A([a-z0-9@.-]{1,64}) ([A-Za-z0-9+/]{1,8192}={0,2})(?: [^\n\r]*)?\Z")
VERIFY_TIMEOUT_S = 60


class ApprovalRefused(UserError):
    """An approval the store does not take; `code` is one of the contract's names."""

    def __init__(self, code: str, text: str, hint: str | None = None):
        super().__init__(f"{code}: {text}", hint=hint)
        self.code, self.text = code, text


def _bad(text: str) -> ApprovalRefused:
    return ApprovalRefused("bad_signature", text)


def key_type(armored: str) -> str:
    """The key type an armored signature names ("unknown" if it is not one)."""
    try:
        return sshsig.decode(armored).key_type
    except Refusal:
        return "unknown"


def verify(document: str, armored: str, principal: str, key_line: str) -> sshsig.Signature:
    """The decoded signature if `armored` is `principal`'s signature, with the registered
    `key_line` ("TYPE BASE64 [comment]"), over exactly `document` (UTF-8)."""
    if not PRINCIPAL_RE.match(principal):
        raise ApprovalRefused("unknown_operator", "not an operator name")
    try:
        signature = sshsig.decode(armored)
    except Refusal as refusal:
        raise _bad(f"not an SSH signature ({refusal.detail})") from None
    if signature.namespace != NAMESPACE:
        raise _bad(f"made for the namespace {signature.namespace!r}, not {NAMESPACE!r}")
    key = KEY_LINE.match(key_line.strip())
    if key is None:
        raise _bad(f"{principal}'s registered key is not a public key line")
    if signature.key_blob != key.group(2):
        raise _bad(f"not made with {principal}'s registered key")
    keygen = require("ssh-keygen")["ssh-keygen"]
    with tempfile.TemporaryDirectory(prefix="mcp-verify-") as tmp:
        signers, sig = Path(tmp) / "allowed_signers", Path(tmp) / "document.sig"
        signers.write_text(f'{principal} namespaces="{NAMESPACE}" {key.group(1)} '
                           f"{key.group(2)}\n")
        sig.write_text(armored)
        done = subprocess.run([keygen, "-Y", "verify", "-f", str(signers), "-I", principal,
                               "-n", NAMESPACE, "-s", str(sig)], input=document.encode("utf-8"),
                              capture_output=True, check=False, timeout=VERIFY_TIMEOUT_S)
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise _bad("ssh-keygen -Y verify refused it"
                   + (f" ({said[-1][:200]})" if said else "") + ": not a signature over "
                   "this document by this key")
    return signature
