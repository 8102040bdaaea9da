"""A caller's access: a tool's scope and a token's groups, as Call applies them."""

import pytest

from mcp_linux_infra.inventory import Host, Inventory, UnknownTarget
from mcp_linux_infra.server.access import Access
from mcp_linux_infra.server.refused import Refused


def _inventory() -> Inventory:
    hosts = {n: Host(name=n, address="127.0.0.1", port=22, vars={}, groups=(g,))
             for n, g in (("web-01", "web"), ("db-01", "db"), ("db-02", "db"))}
    return Inventory(hosts, {"all": tuple(hosts), "web": ("web-01",), "db": ("db-01", "db-02"),
                             "prod": ("web-01", "db-01")})


def test_a_token_limited_to_groups_sees_an_inventory_of_their_hosts():
    limited = Access("team", frozenset({"read"}), frozenset({"web"})).inventory(_inventory())
    assert [h.name for h in limited.resolve("all")] == ["web-01"]
    assert [h.name for h in limited.resolve("prod")] == ["web-01"]
    for name in ("db-01", "db"):
        with pytest.raises(UnknownTarget) as seen:
            limited.resolve(name)
        assert "db-0" not in (seen.value.hint or "")
    assert Access(None, None, None).inventory(_inventory()).resolve("db") == \
        _inventory().resolve("db")


def test_scopes():
    reader = Access("r", frozenset({"read"}), None)
    assert reader.allows("read") and not reader.allows("execute")
    with pytest.raises(Refused) as refused:
        reader.require("execute")
    assert refused.value.reason == "missing_scope"
    Access(None, None, None).require("execute")  # stdio: everything
