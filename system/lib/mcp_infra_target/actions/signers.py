"""Who approved a document, and whether that is enough on this host (the two-person rule).

Order (each refusal a named reason): every signature is decoded first (sshsig: a malformed
or unsupported one refuses the set before any ssh-keygen runs); then each one's principal is
learned from allowed_signers and the signature verified (signature.py: two ssh-keygen runs
per signature, one for a v1 document that names its approver); then the host's and the
action's rules on security keys (presence always, verification where asked, security keys
only, WebAuthn origins); then the count of distinct principals against the required number.
A principal that signs twice refuses the whole set: a quorum is people, not signatures.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp_infra_target.actions import signature, sshsig
from mcp_infra_target.actions.approval import NAMESPACE
from mcp_infra_target.core.refusal import Refusal


@dataclass(frozen=True)
class Approval:
    """One verified signature: who (from allowed_signers), with which key, what it attests."""

    principal: str
    fingerprint: str
    signature: sshsig.Signature

    def summary(self) -> dict[str, Any]:
        """The approval as the log keeps it."""
        return dict(self.signature.summary(), principal=self.principal, key=self.fingerprint)


def principals(allowed_signers: str) -> list[str] | None:
    """Every principal allowed_signers names, sorted (what `pra-exec list` reports, so an
    administrator can compare it with the operators they registered); None if unreadable."""
    try:
        with open(allowed_signers, encoding="utf-8", errors="replace") as handle:
            lines = handle.read(1 << 20).splitlines()
    except OSError:
        return None
    names: set[str] = set()
    for line in lines:
        words = line.split()
        if words and not words[0].startswith("#"):
            names.update(n for n in words[0].split(",") if n)
    return sorted(names)


def _listed_principals(allowed_signers: str, key_blob: str) -> set[str]:
    """Every principal allowed_signers lists for `key_blob`, whatever its line's options:
    find-principals stops at the first line, and one key under two names must refuse."""
    try:
        with open(allowed_signers, encoding="utf-8", errors="replace") as handle:
            lines = handle.read(1 << 20).splitlines()
    except OSError:
        raise Refusal("config_error", "config/allowed_signers",
                      "allowed_signers unreadable") from None
    names: set[str] = set()
    for line in lines:
        words = line.split()
        if words and not words[0].startswith("#") and key_blob in words[1:]:
            names.update(words[0].split(","))
    return names


def identify(document: bytes, armored: list[str], approver: str | None, allowed_signers: str,
             scratch: str, details: list[dict[str, str]]) -> list[Approval]:
    """Decode and verify every signature over `document`; `approver` is a v1 document's
    (None: learn each principal from allowed_signers). `details` receives one dict of
    ssh-keygen messages per signature, for the log."""
    decoded = [sshsig.decode(text) for text in armored]
    if any(sig.namespace != NAMESPACE for sig in decoded):
        raise Refusal("wrong_namespace", "signature/namespace",
                      "signature made for another namespace")
    approvals = []
    for text, sig in zip(armored, decoded):
        messages: dict[str, str] = {}
        details.append(messages)
        if approver is None and len(_listed_principals(allowed_signers, sig.key_blob)) > 1:
            raise Refusal("ambiguous_signer", "config/allowed_signers",
                          "allowed_signers lists this key for more than one operator")
        principal, fingerprint = signature.verify(document, text, approver, allowed_signers,
                                                  scratch, messages)
        approvals.append(Approval(principal, fingerprint, sig))
    return approvals


def check_rules(approvals: list[Approval], settings: dict[str, Any],
                action_user_verification: bool) -> None:
    """The host's (`settings`) and the action's rules on what each signature attests."""
    uv_required = settings["require_user_verification"] or action_user_verification
    origins = settings["webauthn_origins"]
    for approval in approvals:
        sig = approval.signature
        if settings["signers"] == "security_keys" and not sig.security_key:
            raise Refusal("signer_not_security_key", "settings/signers",
                          "this host takes approvals made with security keys only")
        if sig.security_key and not sig.flags & sshsig.FLAG_USER_PRESENT:
            raise Refusal("user_presence_missing", "signature/flags",
                          "the security key did not attest a person's presence")
        if uv_required and not (sig.security_key and sig.flags & sshsig.FLAG_USER_VERIFIED):
            raise Refusal("user_verification_missing", "signature/flags",
                          "this action needs a security key that verified its user "
                          "(PIN or biometric)")
        if sig.origin is not None and origins is not None and sig.origin not in origins:
            raise Refusal("webauthn_origin_mismatch", "settings/webauthn_origins",
                          "signed on a page this host does not accept approvals from")


def count(approvals: list[Approval], required: int) -> list[str]:
    """The distinct principals, sorted, if there are at least `required` of them."""
    principals = [approval.principal for approval in approvals]
    if len(set(principals)) != len(principals):
        raise Refusal("duplicate_principal", "signature/principals",
                      "an operator signed more than once")
    if len(principals) < required:
        raise Refusal("not_enough_approvals", "signature/principals",
                      "%d of %d approvals" % (len(principals), required))
    return sorted(principals)
