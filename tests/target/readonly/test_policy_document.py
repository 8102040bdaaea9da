"""The policy document as the wrapper reads it: one strict JSON reader for every policy file
(a duplicated key anywhere is refused, never silently replaced), the `network` section, and
a command's memory cap reaching exactly its own child."""

import json
import resource

import pytest
import wrapper_support as support
from mcp_infra_target.actions import approval, catalog
from mcp_infra_target.core import strictjson
from mcp_infra_target.readonly import policy
from mcp_infra_target.readonly.valuetypes import PolicyError

DEFAULT_TEXT = support.POLICY_FILE.read_text()


def duplicated(text, anchor, extra):
    """`text` with `extra` (a `"key": value, ` member) inserted right after `anchor`."""
    assert text.count(anchor) == 1, anchor
    return text.replace(anchor, anchor + extra)


# Where a duplicate is planted: top level, a section, a named type, a plugin, a command's
# options, an option's type spec. Each names the key it repeats.
DUPLICATES = [
    pytest.param('{\n  "schema": 1,', ' "schema": 1,', "schema", id="top-level"),
    pytest.param('"defaults": {', '"timeout_s": 3600, ', "timeout_s", id="defaults"),
    pytest.param('\n  "network": {\n', '    "destinations": ["attacker.example"],\n', "destinations",
                 id="network"),
    pytest.param('"journal_field": {', '"type": "text", ', "type", id="named-type"),
    pytest.param('"systemd": {', '"commands": {}, ', "commands", id="plugin"),
    pytest.param('"-F --field": {"type": "journal_field"},', ' "-F --field": {"type": "text"},',
                 "-F --field", id="options"),
    pytest.param('"-c": {"type": "int", "min": 1, "max": 10', ', "max": 1000000', "max",
                 id="option-type"),
]


@pytest.mark.parametrize("anchor, extra, key", DUPLICATES)
def test_a_duplicated_key_anywhere_is_refused_and_named(tmp_path, anchor, extra, key):
    path = tmp_path / "readonly.json"
    path.write_text(duplicated(DEFAULT_TEXT, anchor, extra))
    with pytest.raises(PolicyError, match=f"duplicate key {key!r}"):
        policy.load_for_request(str(path))


def test_the_wrapper_refuses_every_request_of_a_policy_with_a_duplicated_key():
    root = support.make_root()
    try:
        path = root / "etc/mcp-infra/readonly.json"
        path.write_text(duplicated(DEFAULT_TEXT, '"defaults": {', '"timeout_s": 3600, '))
        for request in ("uptime", "mcp:policy", "mcp:explain uptime"):
            refusal = support.refusal_of(support.run_wrapper(root, request))
            assert (refusal["reason"], refusal["rule"]) == ("policy_invalid", "policy/load")
            assert "duplicate key 'timeout_s'" in refusal["detail"]
    finally:
        support.remove_root(root)


@pytest.mark.parametrize("text, message", [
    ('{"a": NaN}', "NaN is not JSON"), ('{"a": -Infinity}', "-Infinity is not JSON"),
    ('{"a": {"b": 1, "b": 2}}', "duplicate key 'b'"), ('[{"x": 1, "x": 1}]', "duplicate key 'x'"),
])
def test_one_strict_reader_for_policy_catalog_and_approvals(text, message):
    with pytest.raises(ValueError, match=message):
        strictjson.loads(text)
    assert approval.strictjson.loads is strictjson.loads  # envelopes and documents too
    with pytest.raises(ValueError, match=message):
        approval.strictjson.loads(text)


def test_the_catalog_uses_the_same_reader(tmp_path):
    path = tmp_path / "actions.json"
    path.write_text('{"version": 1, "settings": {"max_window_seconds": 60, '
                    '"max_window_seconds": 99999}, "actions": {}}')
    with pytest.raises(catalog.CatalogError, match="duplicate key 'max_window_seconds'"):
        catalog.load_catalog(str(path))


# network ---------------------------------------------------------------------------------------

def test_network_section_is_checked_and_compiled_only_when_a_command_needs_it():
    document = support.default_policy_document()
    document["network"]["destinations"].append("not a name")
    loaded = support.load_document(document)  # a request naming `uptime` never compiles it
    from mcp_infra_target.readonly import argvparse
    argvparse.plan(loaded, ["uptime"])
    with pytest.raises(PolicyError, match="network.destinations"):
        loaded.validate()
    for bad in ({"destinations": "localhost"}, {"hosts": []}, []):
        document["network"] = bad
        with pytest.raises(PolicyError, match="network"):
            support.load_document(document)


def test_a_policy_without_a_network_section_allows_no_destination_but_its_own_name():
    import os

    from mcp_infra_target.core.refusal import Refusal
    from mcp_infra_target.readonly import argvparse
    document = support.default_policy_document()
    del document["network"]
    loaded = support.load_document(document)
    with pytest.raises(Refusal) as caught:
        argvparse.plan(loaded, ["getent", "hosts", "localhost"])
    assert caught.value.reason == "destination_not_allowed"
    argvparse.plan(loaded, ["getent", "hosts", os.uname().nodename])


# memory cap ------------------------------------------------------------------------------------

LIMIT_PROBE = ["-c", "import resource; print(*resource.getrlimit(resource.RLIMIT_DATA))"]
HOG = ["-c", "b = bytearray(400 * 1024 * 1024); print(len(b))"]
MIB = 1024 * 1024


def probe_commands(memory_bytes):
    capped = {"executable": ["/usr/bin/python3"], "forced": ["-I", "-S"], "memory_bytes": memory_bytes}
    return {"probe": dict(capped, forced=capped["forced"] + LIMIT_PROBE),
            "hog": dict(capped, forced=capped["forced"] + HOG),
            "free": {"executable": ["/usr/bin/python3"], "forced": ["-I", "-S"] + LIMIT_PROBE}}


def test_memory_cap_reaches_its_command_and_only_its_command():
    root = support.make_root(support.mini_policy(probe_commands(256 * MIB)))
    try:
        soft = support.run_wrapper(root, "probe").stdout.split()[0]
        assert int(soft) == 256 * MIB
        hog = support.run_wrapper(root, "hog")
        assert hog.returncode == 1 and b"MemoryError" in hog.stderr
        free = support.run_wrapper(root, "free").stdout.split()[0]
        assert int(free) in (resource.RLIM_INFINITY, resource.getrlimit(resource.RLIMIT_DATA)[0])
        batch = json.loads(support.run_wrapper(root, "mcp:batch", stdin=json.dumps({"commands": [
            {"id": "p", "command": "probe"}, {"id": "f", "command": "free"},
            {"id": "h", "command": "hog"}]}).encode()).stdout)
        results = {r["id"]: r for r in batch["results"]}
        assert int(results["p"]["stdout"].split()[0]) == 256 * MIB
        assert int(results["f"]["stdout"].split()[0]) != 256 * MIB
        assert results["h"]["exit_code"] == 1 and "MemoryError" in results["h"]["stderr"]
    finally:
        support.remove_root(root)


@pytest.mark.parametrize("bad", [64 * MIB, 17 * 1024 * MIB, "1", 1.5, True])
def test_memory_cap_is_bounded_data(bad):
    with pytest.raises(PolicyError, match="memory_bytes"):
        support.load_document(support.mini_policy(probe_commands(bad))).validate()


def test_the_default_policy_caps_the_commands_that_compile_a_client_pattern():
    loaded = policy.load(str(support.POLICY_FILE))
    for name in ("grep", "journalctl", "pgrep", "find"):
        assert loaded.command(name).memory_bytes is not None, name
