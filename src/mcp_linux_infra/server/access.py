"""What the caller may do: over HTTP, its token's scopes and the inventory groups it is
limited to; over stdio (no token: the local user) everything.

The scope a tool needs is declared where the tool is (`toolcall.tool(..., scope=)`): it
both hides the tool from tools/list and refuses a call to it. A token limited to groups
sees an inventory of only their hosts, so a host outside them is refused exactly like a
host that does not exist.
"""

from dataclasses import dataclass

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken

from mcp_linux_infra.inventory import Inventory
from mcp_linux_infra.server.refused import Refused
from mcp_linux_infra.tokens import Scope

__all__ = ["Access", "Scope", "TeamToken", "current"]


class TeamToken(AccessToken):
    """An AccessToken that may be limited to inventory groups (None: every host)."""

    groups: list[str] | None = None


@dataclass(frozen=True)
class Access:
    client: str | None
    scopes: frozenset[str] | None  # None: every scope
    groups: frozenset[str] | None  # None: every host

    def allows(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes

    def require(self, scope: str) -> None:
        if not self.allows(scope):
            raise Refused(f"this client's token lacks the {scope!r} scope; an operator can "
                          f"issue one with: mcp-linux-infra tokens new NAME --scopes "
                          f"read,{scope}", "missing_scope", "server")

    def inventory(self, inventory: Inventory) -> Inventory:
        return inventory if self.groups is None else inventory.limited(self.groups)


def current() -> Access:
    """The caller of the request being handled."""
    token = get_access_token()
    if token is None:
        return Access(None, None, None)
    groups = getattr(token, "groups", None)
    return Access(token.client_id, frozenset(token.scopes),
                  None if groups is None else frozenset(groups))
