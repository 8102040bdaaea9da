"""The tools as an MCP client lists them are main's (tests/data/tools_list_main.json, written
once from main at 1dbd047 by listing the tools through a client): names, descriptions, input
schemas and annotations, to the byte, but for the one deliberate change below."""

import inspect
import json

import pytest
from conftest import REPO
from mcp import Client
from mcp_support import make_estate

MAIN = REPO / "tests/data/tools_list_main.json"


def as_listed(data: list[dict]) -> str:
    """tools/list as the snapshot spells it."""
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def expected() -> str:
    """Main's list, where each description is its docstring cleaned (`inspect.cleandoc`):
    on main, the docstring's own indentation inside a `register` closure reached the model;
    now a tool's description does not depend on where its function stands in the code."""
    tools = json.loads(MAIN.read_text())
    for tool in tools:
        tool["description"] = inspect.cleandoc(tool["description"])
    return as_listed(tools)


@pytest.mark.anyio
async def test_tools_list_is_mains(tmp_path):
    estate = make_estate(tmp_path, ["web-01"])
    try:
        async with Client(estate.server()) as client:
            tools = (await client.list_tools()).tools
    finally:
        estate.close()
    listed = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
    assert as_listed(listed) == expected()
