"""The signed approval document: its canonical bytes and its nonce.

The target refuses a document that is not its own canonical form, so the bytes signed here
are exactly `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` of the
nine fields, in UTF-8 (system/README.md, "The action protocol").
"""

import json
import secrets
from typing import Any

NAMESPACE = "mcp-linux-infra-approval"
VERSION = 1


def canonical(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def build(proposal: str, host: str, action: str, params: dict[str, str], nonce: str,
          not_before: int, not_after: int, approver: str) -> dict[str, Any]:
    return {"v": VERSION, "proposal": proposal, "host": host, "action": action,
            "params": params, "nonce": nonce, "not_before": not_before,
            "not_after": not_after, "approver": approver}


def new_nonce() -> str:
    """32 hex digits: inside the target's nonce syntax, and never read as an option when
    it is searched for in the target's journal."""
    return secrets.token_hex(16)
