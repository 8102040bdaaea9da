"""What an MCP client is offered: the tools (main's, tests/data/tools_list_main.json, written
once from main at 1dbd047 by listing the tools through a client: names, descriptions, input
schemas and annotations, to the byte, but for the two deliberate changes below), their
annotations, the prompt and the resources."""

import inspect
import json

import pytest
from mcp import Client
from paths_support import REPO

from mcp_linux_infra.server.args import OPERAND

MAIN = REPO / "tests/data/tools_list_main.json"
TOOLS = {"list_hosts", "diagnose_system", "get_service_status", "fetch_logs",
         "get_top_processes", "get_network_status", "check_port", "dns_lookup",
         "list_containers", "container_logs", "check_updates", "read_file", "run_diagnostic",
         "explain_command", "analyze_command", "list_command_plugins", "get_plugin_details",
         "search_commands", "get_learning_suggestions", "get_learning_stats"}
# the action tools (tests/server/tools/test_action_tools.py): annotated apart
ACTION_TOOLS = {"list_pra_actions", "propose_pra_action", "get_proposal", "list_proposals",
                "execute_pra_action", "verify_service"}


def as_listed(data: list[dict]) -> str:
    """tools/list as the snapshot spells it."""
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


# The unit and container arguments, where main's schema held copies of the target's value
# patterns: now one printable word that is not an option, of main's length (the host checks
# the value itself, tests/server/test_answers.py).
OPERANDS = {("get_service_status", "service"): 255, ("verify_service", "service"): 255,
            ("fetch_logs", "unit"): 255, ("container_logs", "container"): 128}


def expected() -> str:
    """Main's list, but (1) each description is its docstring cleaned (`inspect.cleandoc`):
    on main, the docstring's own indentation inside a `register` closure reached the model;
    now a tool's description does not depend on where its function stands in the code; (2)
    the OPERANDS."""
    tools = json.loads(MAIN.read_text())
    for tool in tools:
        tool["description"] = inspect.cleandoc(tool["description"])
        for name, schema in tool["inputSchema"]["properties"].items():
            if (tool["name"], name) in OPERANDS:
                string = next(s for s in schema.get("anyOf", [schema]) if s["type"] == "string")
                string.update(maxLength=OPERANDS[tool["name"], name], minLength=1,
                              pattern=OPERAND)
                ordered = sorted(string.items())  # pydantic writes a schema's keys sorted
                string.clear()
                string.update(ordered)
    return as_listed(tools)


@pytest.mark.anyio
async def test_catalogue_all_read_only(estate, mode):
    async with Client(estate().server(), mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == TOOLS | ACTION_TOOLS
        for tool in (tools[name] for name in TOOLS):
            assert tool.annotations.read_only_hint is True, tool.name
            assert tool.annotations.destructive_hint is False, tool.name
            assert tool.description, tool.name
            assert "ctx" not in tool.input_schema["properties"], tool.name
        assert tools["diagnose_system"].input_schema["required"] == ["target"]
        prompts = (await client.list_prompts()).prompts
        assert [p.name for p in prompts] == ["triage"]
        resources = (await client.list_resources()).resources
        assert [str(r.uri) for r in resources] == ["linux-infra://hosts"]
        templates = (await client.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["linux-infra://hosts/{name}/policy"]


@pytest.mark.anyio
async def test_tools_list_is_mains(estate):
    async with Client(estate(["web-01"]).server()) as client:
        tools = (await client.list_tools()).tools
    listed = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
    assert as_listed(listed) == expected()
