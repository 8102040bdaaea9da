"""The operators registry the approval tests use: until the Registry of
mcp_linux_infra.operators is on this branch, a stand-in with its contract's names
(add, get, revoke; Operator's public_key and revoked_at)."""

import time
from dataclasses import dataclass, replace
from pathlib import Path

from mcp_linux_infra.errors import UserError


@dataclass(frozen=True)
class Operator:
    name: str
    kind: str
    public_key: str
    rp_id: str | None = None
    credential_id: str | None = None
    created_at: float = 0.0
    revoked_at: float | None = None


class StandIn:
    def __init__(self):
        self.operators: dict[str, Operator] = {}

    def add(self, name: str, public_key_line: str, kind=None, credential_id=None, rp_id=None):
        self.operators[name] = Operator(name, kind or public_key_line.split()[0],
                                        public_key_line, rp_id, credential_id, time.time())
        return self.operators[name]

    def get(self, name: str):
        if name not in self.operators:
            raise UserError(f"unknown_operator: no operator named {name!r}")
        return self.operators[name]

    def revoke(self, name: str) -> None:
        self.operators[name] = replace(self.operators[name], revoked_at=time.time())

    def close(self) -> None:
        pass


def registry(path: Path):
    return StandIn()
