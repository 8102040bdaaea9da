"""The signed approval document (v2): its canonical bytes, its shape, its nonces.

Every approver of a proposal signs the same bytes: `canonical(build_v2(...))`, the
`json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` of
{v: 2, id, steps: [{host, action, params, nonce}], not_before, not_after, approvals}, in
UTF-8 (system/README.md, "The action protocol"). The target refuses any other byte form, so
`build_v2` checks its result with the target's own parser before anyone is asked to sign it.
"""

import json
import secrets
from typing import Any

from mcp_infra_target.actions import approval as target_approval
from mcp_infra_target.core.refusal import Refusal

NAMESPACE = target_approval.NAMESPACE
VERSION = 2


def canonical(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def build_v2(id: str, steps: list[dict[str, Any]], not_before: int, not_after: int,
             approvals: int) -> dict[str, Any]:
    """The v2 document; ValueError (with the target's reason) if the target would refuse
    its shape: 1..64 steps of {host, action, params, nonce} with distinct nonces, integer
    times, 1..9 approvals."""
    document = {"v": VERSION, "id": id,
                "steps": [{k: step.get(k) for k in target_approval.STEP_KEYS} for step in steps],
                "not_before": not_before, "not_after": not_after, "approvals": approvals}
    try:
        target_approval.parse_document(canonical(document))
    except Refusal as refusal:
        raise ValueError(f"{refusal.reason}: {refusal.detail}") from None
    return document


def build_v1(proposal: str, host: str, action: str, params: dict[str, str], nonce: str,
             not_before: int, not_after: int, approver: str) -> dict[str, Any]:
    """The retired v1 document, only for approvals a schema-1 store signed before the
    upgrade (the target accepts v1 for one more release); nothing new is signed as v1."""
    return {"v": 1, "proposal": proposal, "host": host, "action": action,
            "params": params, "nonce": nonce, "not_before": not_before,
            "not_after": not_after, "approver": approver}


def new_nonce() -> str:
    """32 hex digits: inside the target's nonce syntax, and never read as an option when
    it is searched for in the target's journal."""
    return secrets.token_hex(16)
