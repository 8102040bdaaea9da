"""mcp:policy's `_effective.commands`: the compiled policy in words, so the MCP server shows
a host's catalog without reading the policy's schema; every older key is kept."""
from __future__ import annotations

import json

import pytest
from mcp_infra_target.readonly.describe import value_text
from wrapper_support import make_root, mini_policy, remove_root, run_wrapper


@pytest.mark.parametrize("spec, text", [
    pytest.param(None, None, id="no-value"),
    pytest.param({"type": "enum", "values": ["a", "b", "c"]}, "one of a|b|c", id="enum"),
    pytest.param({"type": "int", "min": 1, "max": 100}, "int 1..100", id="int"),
    pytest.param({"type": "int", "min": 0}, "int 0..", id="int-open"),
    pytest.param({"type": "number", "max": 60}, "number ..60", id="number"),
    pytest.param({"type": "path"}, "path (read)", id="path-read"),
    pytest.param({"type": "path", "access": "list"}, "path (list)", id="path-list"),
    pytest.param({"type": "destination"}, "destination", id="destination"),
    pytest.param({"type": "unit"}, "unit", id="named-type"),
    pytest.param({"type": "text", "max_len": 64}, "text of at most 64 characters", id="text"),
    pytest.param({"type": "regex", "pattern": "[a-z]+"}, "text matching [a-z]+", id="regex"),
    pytest.param({"type": "regex", "pattern": "x" * 100}, "text matching " + "x" * 77 + "...",
                 id="long-regex"),
    pytest.param({"type": "list", "item": {"type": "int", "min": 1, "max": 9}},
                 "list of int 1..9 separated by ','", id="list"),
    pytest.param({"type": "any_of", "types": [{"type": "ip"}, {"type": "hostname"}]},
                 "ip or hostname", id="any-of"),
    pytest.param({"type": "pattern", "syntax": "pcre"}, "pattern (pcre)", id="pattern"),
    pytest.param({"type": "format", "syntax": "go", "fields": ["a"]},
                 "go template of listed fields", id="format"),
])
def test_value_text(spec, text):
    assert value_text(spec) == text


def test_mcp_policy_describes_each_command_through_the_real_wrapper():
    root = make_root(mini_policy({"tail": {
        "executable": ["/usr/bin/tail"], "description": "last lines",
        "options": {"-n --lines": {"type": "int", "min": 1, "max": 100}, "-q": None},
        "operands": {"min": 1, "max": 1, "items": [{"type": "path", "access": "read"}]}},
        "ip": {"executable": ["/usr/sbin/ip", "/sbin/ip"], "style": "words",
               "subcommands": {"route": {"description": "routes", "subcommands": {
                   "show": {"options": {"table": {"type": "enum", "values": ["main"]}}}}}}}}))
    try:
        done = run_wrapper(root, "mcp:policy")
        assert done.returncode == 0, done.stderr
        effective = json.loads(done.stdout)["_effective"]
        assert set(effective) == {"version", "policy_sha256", "commands"}
        tail = effective["commands"]["tail"]
        assert tail == {"rule": "test/tail", "executable": "/usr/bin/tail",
                        "forms": ["test/tail"], "plugin": "test", "description": "last lines",
                        "options": [{"option": "-n --lines", "value": "int 1..100"},
                                    {"option": "-q", "value": None}],
                        "subcommands": {}}
        ip = effective["commands"]["ip"]
        assert ip["forms"] == ["test/ip route show"]
        assert ip["subcommands"] == {"route": {"description": "routes", "options": [],
                                               "subcommands": {"show": {
                                                   "description": "", "options": [
                                                       {"option": "table",
                                                        "value": "one of main"}]}}}}
    finally:
        remove_root(root)
