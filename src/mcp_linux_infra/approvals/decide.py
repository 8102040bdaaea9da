"""The operator's two decisions on a pending proposal, without the terminal around them.

An approval signs exactly the host, action and params that are stored, and the transition
checks they are still the same when it commits: a row changed between showing and signing
is refused, not approved.
"""

import time
from pathlib import Path

from mcp_linux_infra.approvals.document import build, canonical, new_nonce
from mcp_linux_infra.approvals.signing import sign
from mcp_linux_infra.approvals.store import ApprovalStore, Proposal


def approve(store: ApprovalStore, proposal: Proposal, ttl: int, approver: str,
            key: Path) -> Proposal:
    """Sign an approval valid from now for `ttl` seconds and record it."""
    now = int(time.time())
    document = build(proposal.id, proposal.host, proposal.action, proposal.params, new_nonce(),
                     now, now + ttl, approver)
    signature = sign(canonical(document), key)
    return store.transition(
        proposal.id, "approved", f"operator:{approver}",
        expect={"state": "pending", "host": proposal.host, "action": proposal.action,
                "params": proposal.params},
        approver=approver, nonce=document["nonce"], not_before=now, not_after=now + ttl,
        signature=signature, note=f"approved for {ttl} s")


def reject(store: ApprovalStore, proposal_id: str, approver: str, reason: str) -> Proposal:
    return store.transition(proposal_id, "rejected", f"operator:{approver}", reason=reason,
                            note="rejected by the operator")
