"""What an MCP client is offered, by the rules of the tool surface: tools/list within 12,000
bytes as the SDK's client receives it, a title on every tool, the host argument always
`host`, one `format` default, an output schema on every tool whose structured result the
SDK's client validates, and every capability of the previous surface (main's list at
1dbd047, tests/data/tools_list_main.json) reachable in the new one."""

import json
import re

import pytest
from mcp import Client
from mcp_support import call
from paths_support import REPO

from mcp_linux_infra.server.args import DEFAULT_FORMAT
from mcp_linux_infra.server.schemas import shape

MAIN = REPO / "tests/data/tools_list_main.json"
LIMIT = 12_000
ACTION_TOOLS = {"list_pra_actions", "propose_pra_action", "get_proposal", "list_proposals",
                "execute_pra_action"}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

# Each tool of the previous surface -> the call of this one that gives its data, and the
# fields of the previous answer that this one carries (the action tools but list_pra_actions
# need a proposal: tests/server/tools/test_action_tools.py).
CAPABILITIES = {
    "list_hosts": ("list_hosts", {"host": "web"}, ["hosts", "groups"]),
    "diagnose_system": ("diagnose_system", {"host": "web", "checks": ["load"]},
                        ["checks", "summary", "reports"]),
    "get_service_status": ("get_service_status", {"host": "web-02", "service": "nginx"},
                           ["service", "properties", "log"]),
    "verify_service": ("get_service_status", {"host": "web-02", "service": "nginx",
                                              "log_lines": 10},
                       ["service", "active", "verdict", "since", "log"]),
    "fetch_logs": ("fetch_logs", {"host": "web-01", "lines": 20, "priority": "err",
                                  "since": "-1h"}, ["count", "entries"]),
    "get_top_processes": ("get_top_processes", {"host": "web-01"}, ["total", "processes"]),
    "get_network_status": ("get_network_status", {"host": "web-01"},
                           ["interfaces", "routes", "listening", "nameservers"]),
    "check_port": ("check_port", {"host": "web-03", "port": 80}, ["listening", "sockets"]),
    "dns_lookup": ("dns_lookup", {"host": "web-01", "name": "localhost"},
                   ["system_resolver", "dns"]),
    "list_containers": ("list_containers", {"host": "web-01"}, ["runtimes"]),
    "container_logs": None,  # no captured container output: tests/server/tools
    "check_updates": ("check_updates", {"host": "web-01"}, ["upgradable", "packages"]),
    "read_file": ("read_file", {"host": "web-01", "path": "/etc/hostname"}, ["lines", "more"]),
    "run_diagnostic": ("run_diagnostic", {"host": "web-01", "command": "uptime"},
                       ["exit_code", "stdout", "stderr"]),
    "explain_command": ("command_catalog", {"mode": "explain", "host": "web-01",
                                            "query": "cat /etc/shadow"},
                        ["command", "allowed", "similar_allowed"]),
    "analyze_command": ("command_catalog", {"mode": "risk", "query": "find / -delete"},
                        ["risk", "category", "recommendation", "reasons"]),
    "list_command_plugins": ("command_catalog", {"mode": "plugins", "host": "web-01"},
                             ["policy_sha256", "plugins"]),
    "get_plugin_details": ("command_catalog", {"mode": "plugin", "host": "web-01",
                                               "query": "network"},
                           ["plugin", "description", "commands"]),
    "search_commands": ("command_catalog", {"mode": "search", "host": "web-01",
                                            "query": "journal"}, ["query", "matches"]),
    "get_learning_suggestions": ("command_catalog", {"mode": "suggestions", "min_count": 1,
                                                     "min_age_hours": 0},
                                 ["min_count", "min_age_hours"]),
    "get_learning_stats": ("command_catalog", {"mode": "refusals"},
                           ["refusals", "by_reason", "first_seen", "last_seen"]),
    "list_pra_actions": None, "propose_pra_action": None, "get_proposal": None,
    "list_proposals": ("list_proposals", {}, ["count", "proposals"]),
    "execute_pra_action": None,
}


async def listed(estate):
    async with Client(estate(["web-01"]).server()) as client:
        return (await client.list_tools()).tools


@pytest.mark.anyio
async def test_size_titles_host_format(estate):
    tools = await listed(estate)
    listing = {"tools": [t.model_dump(mode="json", by_alias=True, exclude_none=True)
                         for t in tools]}
    for separators in ((",", ":"), (", ", ": ")):  # as on the wire, and json.dumps' default
        size = len(json.dumps(listing, separators=separators).encode())
        assert size <= LIMIT, (separators, size)
    defaults = set()
    for tool in tools:
        assert tool.title and tool.description, tool.name
        assert tool.output_schema and tool.output_schema["type"] == "object", tool.name
        props = tool.input_schema["properties"]
        assert "ctx" not in props and "target" not in props, tool.name
        assert not [p for p in props if "host" in p and p != "host"], tool.name
        if "format" in props:
            defaults.add(props["format"]["default"])
    assert defaults == {DEFAULT_FORMAT}
    assert [t.name for t in tools if "format" not in t.input_schema["properties"]] == []


@pytest.mark.anyio
async def test_annotations_prompt_resources(estate, mode):
    async with Client(estate().server(), mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for tool in tools.values():
            if tool.name not in ACTION_TOOLS - {"list_pra_actions"}:
                assert tool.annotations.read_only_hint is True, tool.name
        assert tools["execute_pra_action"].annotations.destructive_hint is True
        assert tools["propose_pra_action"].annotations.destructive_hint is False
        assert tools["diagnose_system"].input_schema["required"] == ["host"]
        assert "group" in tools["diagnose_system"].input_schema["properties"]["host"][
            "description"]
        prompts = (await client.list_prompts()).prompts
        assert [p.name for p in prompts] == ["triage"]
        resources = (await client.list_resources()).resources
        assert [str(r.uri) for r in resources] == ["linux-infra://hosts"]
        templates = (await client.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["linux-infra://hosts/{name}/policy"]


def test_every_previous_tool_is_mapped():
    previous = {t["name"] for t in json.loads(MAIN.read_text())}
    assert previous == set(CAPABILITIES)


@pytest.mark.anyio
@pytest.mark.parametrize("old", sorted(k for k, v in CAPABILITIES.items() if v))
async def test_previous_capability(estate, old):
    """The new call answers with the previous tool's fields; the SDK's client has checked
    the structured content against the output schema (it raises otherwise), the text is a
    summary, not the JSON again, and every time is ISO 8601 UTC."""
    name, args, fields = CAPABILITIES[old]
    async with Client(estate(["web-01", "web-02", "web-03"]).server()) as client:
        await call(client, "run_diagnostic", host="web-01", command="cat /etc/shadow")
        result = await client.call_tool(name, args)
        assert not result.is_error, result.content[0].text
        content, text = result.structured_content, result.content[0].text
        assert [f for f in fields if f not in content] == []
        assert text != json.dumps(content) and "structured content" in text
        for fmt in ("toon", "text"):
            other = await client.call_tool(name, {**args, "format": fmt})
            assert other.structured_content == content or name == "list_hosts"
            assert other.content[0].text != text
    for key, value in _times(content):
        assert value is None or ISO.match(value), (key, value)


def _times(data, key=""):
    """(key, value) of every field named like a time."""
    if isinstance(data, dict):
        for k, v in data.items():
            if k in ("time", "at", "first_seen", "last_seen", "first", "last", "since",
                     "created_at", "not_after") and not isinstance(v, (dict, list)):
                yield k, v
            else:
                yield from _times(v, k)
    elif isinstance(data, list):
        for v in data:
            yield from _times(v, key)




@pytest.mark.anyio
async def test_the_sdk_client_checks_results_against_the_output_schema(estate):
    """What the capability test relies on: a result that does not have its schema's fields
    is refused by the SDK's client."""
    server = estate(["web-01"]).server()
    server._tool_manager.get_tool("list_proposals").fn_metadata.output_schema = shape("nope")
    async with Client(server) as client:
        with pytest.raises(RuntimeError, match="Invalid structured content"):
            await client.call_tool("list_proposals", {})
