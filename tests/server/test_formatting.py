"""Results as the model asks for them (server/formatting.py): always the structured content;
as text a one-line summary (json), toon that decodes to the structured result in fewer
bytes, or aligned text."""

import json

import pytest
import toon_format
from mcp import Client
from mcp_support import call, data

from mcp_linux_infra.server.diagnose_view import restore


@pytest.mark.anyio
async def test_formats(estate):
    async with Client(estate().server()) as client:
        as_json = await data(client, "list_hosts", check=False)
        _, structured, toon_text = await call(client, "list_hosts", check=False, format="toon")
        _, again, text = await call(client, "list_hosts", check=False, format="text")
        _, _, summary = await call(client, "list_hosts", check=False)
    assert structured == again == as_json
    assert summary.startswith("hosts: 2, groups(web=2)") and "format=toon" in summary
    assert toon_format.loads(toon_text) == as_json
    assert len(toon_text) < 0.8 * len(json.dumps(as_json))
    assert text.splitlines()[:2] == ["hosts:", "  name    groups  address    port"]


def _values(data) -> int:
    """Bytes of the values alone, one separator each: no lossless layout needs fewer."""
    if isinstance(data, dict):
        return sum(map(_values, data.values()))
    if isinstance(data, list):
        return sum(map(_values, data))
    return len(str(data).encode()) + 1


@pytest.mark.anyio
@pytest.mark.parametrize(("tool", "args"), [
    pytest.param("diagnose_system", {"host": "web", "checks": ["load"]}, id="diagnose-load"),
    pytest.param("diagnose_system", {"host": "web-01"}, id="diagnose-one-host"),
    pytest.param("command_catalog", {"host": "web-01"}, id="plugins"),
    pytest.param("command_catalog", {"host": "web-01", "mode": "search", "query": "-"},
                 id="search"),
])
async def test_toon_carries_what_json_does(estate, tool, args):
    """The TOON text decodes to the JSON result (diagnose_system's through its by-check view,
    tests/server/test_diagnose_view.py). The catalog's results are mostly prose, descriptions
    and option lists: their values alone weigh over 0.6 of the JSON, so there TOON is held
    to little more than its values."""
    async with Client(estate().server()) as client:
        as_json = await data(client, tool, **args)
        _, _, toon_text = await call(client, tool, format="toon", **args)
    decoded = toon_format.loads(toon_text)
    assert (restore(decoded) if tool == "diagnose_system" else decoded) == as_json
    if tool == "command_catalog":
        assert _values(as_json) > 0.6 * len(json.dumps(as_json))
        assert len(toon_text.encode()) < 1.1 * _values(as_json)
