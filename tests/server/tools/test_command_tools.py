"""run_diagnostic and command_catalog's modes (plugins, plugin, search, explain, risk, what the
hosts keep refusing) through a real MCP client against real SSH and the real wrapper."""

import pytest
import yaml
from mcp import Client
from mcp_support import data, refused


@pytest.mark.anyio
async def test_refusals_explained_recorded_and_learned(estate, mode):
    e = estate()
    async with Client(e.server(), mode=mode) as client:
        ok = await data(client, "run_diagnostic", host="web-01", command="uptime")
        assert "load average" in ok["stdout"] and ok["exit_code"] == 0
        text = await refused(client, "run_diagnostic", host="web-01", command="nc -z db 5432")
        assert "web-01 refused `nc -z db 5432`: unknown_command" in text
        assert "Allowed forms close to it:" in text and "mcp_infra_readonly_extra_commands" in text
        assert "Risk if allowed: MEDIUM" in text
        text = await refused(client, "run_diagnostic", host="web-01",
                             command="journalctl --vacuum-size=1M")
        assert "unknown_option" in text and "journalctl [" in text and "HIGH" in text
        shadow = await refused(client, "read_file", host="web-01", path="/etc/shadow")
        assert "web-01 refused `head -n 201 /etc/shadow`" in shadow
        for _ in range(2):
            await refused(client, "run_diagnostic", host="web-02", command="tree -L 2 /etc")
        stats = await data(client, "command_catalog", mode="refusals")
        assert stats["refusals"] == 5 and stats["by_host"] == {"web-01": 3, "web-02": 2}
        assert stats["top_commands"]["tree"] == 2
        none_yet = await data(client, "command_catalog", mode="suggestions")  # 3 times, a day old
        assert none_yet["proposed"] == [] and none_yet["ansible_vars_snippet"] == ""
        ideas = await data(client, "command_catalog", mode="suggestions", min_count=2,
                           min_age_hours=0)
    assert [p["command"] for p in ideas["proposed"]] == ["tree"]
    snippet = yaml.safe_load(ideas["ansible_vars_snippet"])
    assert snippet["mcp_infra_readonly_extra_commands"]["tree"]["options"] == {"-L": None}
    assert "REVIEW" in ideas["ansible_vars_snippet"]


# command_catalog's arguments, what to look at in the result, what it must be
ANSWERS = [
    pytest.param({"mode": "explain", "host": "web-01", "query": "ss -tlnp"},
                 lambda r: (r["allowed"], r["rule"]), (True, "network/ss"), id="explain-allowed"),
    pytest.param({"mode": "explain", "host": "web-01", "query": "tail -f /x"},
                 lambda r: (r["allowed"], bool(r["similar_allowed"])), (False, True),
                 id="explain-refused-with-similar-forms"),
    pytest.param({"mode": "explain", "query": "find / -exec rm {} +", "host": "web-01"},
                 lambda r: (r["risk"]["risk"], r["risk"]["recommendation"], r["allowed"],
                            r["risk"]["reasons"][0]),
                 ("CRITICAL", "BLOCK", False, "`-exec` lets find run other programs or code"),
                 id="analyze-with-host"),
    pytest.param({"mode": "risk", "query": "find / -exec rm {} +"},
                 lambda r: (r["risk"], r["recommendation"]), ("CRITICAL", "BLOCK"),
                 id="risk-without-host"),
    pytest.param({"host": "web-01"},
                 lambda r: {p["plugin"] for p in r["plugins"]} >= {"network", "systemd"}, True,
                 id="plugins"),
    pytest.param({"mode": "plugin", "host": "web-01", "query": "network"},
                 lambda r: "ss" in [c["name"] for c in r["commands"]], True, id="plugin-details"),
    pytest.param({"mode": "search", "host": "web-01", "query": "journal"},
                 lambda r: "journalctl" in [m["command"] for m in r["matches"]], True,
                 id="search"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("args", "look", "expected"), ANSWERS)
async def test_explain_analyze_and_the_catalog(estate, args, look, expected):
    async with Client(estate(["web-01"]).server()) as client:
        assert look(await data(client, "command_catalog", **args)) == expected


@pytest.mark.anyio
@pytest.mark.parametrize(("args", "said"), [
    ({"mode": "explain", "query": "uptime"}, "mode explain needs host and query"),
    ({"mode": "search", "host": "web-01"}, "mode search needs host and query"),
    ({"mode": "plugin", "host": "web-01", "query": "x" * 65}, "at most 64 characters"),
])
async def test_a_mode_without_what_it_needs_says_so(estate, args, said):
    async with Client(estate(["web-01"]).server()) as client:
        assert said in await refused(client, "command_catalog", **args)


@pytest.mark.anyio
async def test_a_plugin_the_host_lacks_is_named_with_those_it_has(estate):
    async with Client(estate(["web-01"]).server()) as client:
        assert "no plugin 'nope'" in await refused(client, "command_catalog", mode="plugin",
                                                   host="web-01", query="nope")


@pytest.mark.anyio
async def test_an_older_wrapper_shows_its_forms_and_says_it_is_older(estate, previous_tier):
    """A host whose wrapper is of the previous version describes its commands by their forms
    only: the catalog tools show those, and say the wrapper is older."""
    e = estate(["web-01"], tier=previous_tier)
    async with Client(e.server()) as client:
        plugins = await data(client, "command_catalog", host="web-01")
        assert plugins["plugins"] == [] and plugins["note"].startswith(
            "this host's wrapper is older than this client")
        found = await data(client, "command_catalog", mode="search", host="web-01",
                           query="journal")
        assert "journalctl" in [m["command"] for m in found["matches"]]
        assert found["note"] == plugins["note"]
        text = await refused(client, "command_catalog", mode="plugin", host="web-01",
                             query="network")
        assert "web-01: this host's wrapper is older" in text
        text = await refused(client, "run_diagnostic", host="web-01",
                             command="journalctl --vacuum-size=1M")
        assert "unknown_option" in text and "Allowed forms close to it: systemd/journalctl" in text
    assert e.misses == []
