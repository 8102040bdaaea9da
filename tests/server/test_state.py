"""What lives as long as the server (server/state.py): the inventory, read again when one
of its files changes."""

import pytest
from mcp import Client
from mcp_support import data


@pytest.mark.anyio
async def test_inventory_changes_are_picked_up_without_a_restart(estate):
    e = estate()
    inventory = e.settings.inventory[0]
    async with Client(e.server()) as client:
        assert len((await data(client, "list_hosts", check=False))["hosts"]) == 2
        port = e.hosts["web-01"].port
        inventory.write_text(inventory.read_text()
                             + f"[db]\ndb-01 ansible_host=127.0.0.1 ansible_port={port}\n")
        hosts = await data(client, "list_hosts", target="db")
        assert [(h["name"], h["reachable"]) for h in hosts["hosts"]] == [("db-01", True)]
        assert hosts["groups"] == {"db": 1, "web": 2}
