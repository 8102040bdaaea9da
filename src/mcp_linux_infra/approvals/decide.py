"""The operator's decisions on a pending proposal, without the terminal around them.

Approving starts from the proposal's one approval document (`draft`: the store prepares it
once, and every approver signs those same bytes); the CLI shows the fields of that very text,
parsed back, asks, and then signs exactly that text with the operator's own key
(`sign_draft`), and the store takes the signature only after checking it against that
operator's registered key, and only while that document is still the proposal's.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_linux_infra.approvals.document import canonical
from mcp_linux_infra.approvals.signing import sign
from mcp_linux_infra.approvals.store import ApprovalRefused, ApprovalStore, Proposal
from mcp_linux_infra.errors import UserError

METHOD = "cli"


@dataclass(frozen=True)
class Draft:
    """An approval document not signed (by this operator) yet: `text` is what is signed."""

    text: str

    @property
    def fields(self) -> dict[str, Any]:
        """The document as its own bytes say (what the operator is shown)."""
        return json.loads(self.text)


def draft(store: ApprovalStore, proposal_id: str, ttl: int,
          now: float | None = None) -> Draft:
    """The proposal's approval document (prepared now, valid for `ttl` seconds, unless one
    is already open)."""
    return Draft(store.prepare_document(proposal_id, ttl, now).document_text)


def check_signer(store: ApprovalStore, principal: str, key: Path) -> None:
    """Before anyone is asked for a passphrase or a touch: `principal` is a current
    operator and, where the key's public half is at hand (KEY.pub, or KEY itself when it is
    a .pub for ssh-agent), it is the key registered for that operator."""
    registered = store.operator_key(principal).split()[:2]
    public = key if key.suffix == ".pub" else key.with_name(key.name + ".pub")
    try:
        words = public.read_text(encoding="utf-8", errors="replace").split()[:2]
    except OSError:
        return  # ssh-keygen finds out; the store checks the signature anyway
    if words != registered:
        raise ApprovalRefused("bad_signature", f"{public} is not {principal}'s registered "
                              "key; nothing was signed",
                              hint=f"sign as the operator whose key it is (--as), or with "
                                   f"{principal}'s key (--key); `operators list` shows them")


def sign_draft(store: ApprovalStore, document: Draft, principal: str, key: Path) -> Proposal:
    """Sign exactly `document.text` with `key` and record it as `principal`'s approval."""
    fields = document.fields
    if canonical(fields) != document.text:
        raise UserError("the approval document is not in its canonical form; nothing was "
                        "signed")
    if int(time.time()) > fields["not_after"]:  # the target's own test for `expired`
        raise UserError(f"the approval's window closed (at {fields['not_after']}) before it "
                        "was signed; nothing was signed",
                        hint=f"run: mcp-linux-infra approvals approve {fields['id']}")
    return store.add_approval(fields["id"], principal, sign(document.text, key), METHOD,
                              document=document.text)


def approve(store: ApprovalStore, proposal_id: str, ttl: int, principal: str,
            key: Path) -> Proposal:
    """Sign the proposal's document as `principal` and record it (no screen)."""
    check_signer(store, principal, key)
    return sign_draft(store, draft(store, proposal_id, ttl), principal, key)
