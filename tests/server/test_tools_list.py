"""The tools as an MCP client lists them are main's (tests/data/tools_list_main.json, written
once from main at 1dbd047 by listing the tools through a client): names, descriptions, input
schemas and annotations, to the byte."""

import json

import pytest
from conftest import REPO
from mcp import Client
from mcp_support import make_estate

MAIN = REPO / "tests/data/tools_list_main.json"


def as_listed(tools) -> str:
    """tools/list as the snapshot spells it."""
    data = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


@pytest.mark.anyio
async def test_tools_list_is_mains(tmp_path):
    estate = make_estate(tmp_path, ["web-01"])
    try:
        async with Client(estate.server()) as client:
            listed = as_listed((await client.list_tools()).tools)
    finally:
        estate.close()
    assert listed == MAIN.read_text()
