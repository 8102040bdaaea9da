"""The operator's two decisions on a pending proposal, without the terminal around them.

An approval is built first, as the canonical document with a fresh nonce and its window
(`draft`); the CLI shows the fields of that very text, parsed back, asks, and then signs
exactly that text (`sign_draft`). The transition checks that the stored host, action and
params are still the document's when it commits: a row changed between showing and
signing is refused, not approved.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_linux_infra.approvals.document import build, canonical, new_nonce
from mcp_linux_infra.approvals.signing import sign
from mcp_linux_infra.approvals.store import ApprovalStore, Proposal
from mcp_linux_infra.errors import UserError


@dataclass(frozen=True)
class Draft:
    """An approval document not signed yet: `text` is the canonical JSON that is signed."""

    text: str

    @property
    def fields(self) -> dict[str, Any]:
        """The document as its own bytes say (what the operator is shown)."""
        return json.loads(self.text)


def draft(proposal: Proposal, ttl: int, approver: str, now: int | None = None) -> Draft:
    """The document approving `proposal` from now for `ttl` seconds, with a fresh nonce."""
    now = int(time.time()) if now is None else now
    return Draft(canonical(build(proposal.id, proposal.host, proposal.action, proposal.params,
                                 new_nonce(), now, now + ttl, approver)))


def sign_draft(store: ApprovalStore, document: Draft, key: Path) -> Proposal:
    """Sign exactly `document.text` and record it, if the proposal is still pending with the
    document's host, action and params and the document's window is still open."""
    fields = document.fields
    if canonical(fields) != document.text:
        raise UserError("the approval document is not in its canonical form; nothing was "
                        "signed")
    if int(time.time()) > fields["not_after"]:  # the target's own test for `expired`
        raise UserError(f"the approval's window closed (at {fields['not_after']}) before it "
                        "was signed; nothing was signed",
                        hint=f"run: mcp-linux-infra approvals approve {fields['proposal']}")
    signature = sign(document.text, key)
    return store.transition(
        fields["proposal"], "approved", f"operator:{fields['approver']}",
        expect={"state": "pending", "host": fields["host"], "action": fields["action"],
                "params": fields["params"]},
        approver=fields["approver"], nonce=fields["nonce"], not_before=fields["not_before"],
        not_after=fields["not_after"], signature=signature,
        note=f"approved for {fields['not_after'] - fields['not_before']} s")


def approve(store: ApprovalStore, proposal: Proposal, ttl: int, approver: str,
            key: Path) -> Proposal:
    """Sign an approval valid from now for `ttl` seconds and record it (no screen)."""
    return sign_draft(store, draft(proposal, ttl, approver), key)


def reject(store: ApprovalStore, proposal_id: str, approver: str, reason: str) -> Proposal:
    return store.transition(proposal_id, "rejected", f"operator:{approver}", reason=reason,
                            note="rejected by the operator")
