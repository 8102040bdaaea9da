"""Drafts of policy additions from refused commands (server/learning.py): what an operator
reviews is a spec the target's own policy loader compiles, as the role would render it
(plugin "site"): a draft an operator adds must never break a host's policy."""

import time

import pytest
import yaml
from mcp_infra_target.core.refusal import Refusal
from mcp_infra_target.readonly import argvparse
from wrapper_support import default_policy_document, load_document

from mcp_linux_infra.server.learning import RefusedCommand, draft_spec, suggestions


def test_a_drafted_spec_compiles_in_the_targets_own_policy_loader():
    seen = [RefusedCommand("tree -L 2 /etc", "tree", 3, ["a"], ["unknown_command"], 0, 0, ""),
            RefusedCommand("tree --charset=ascii -d /var/log", "tree", 2, ["b"],
                           ["unknown_command"], 0, 0, "")]
    spec = draft_spec("tree", seen)
    assert spec["options"] == {"-L": None, "--charset": {"type": "short_text"}, "-d": None}
    document = default_policy_document()
    document["plugins"]["site"] = {"description": "site additions", "commands": {"tree": spec}}
    assert "tree" in load_document(document).commands


def refused(command: str, count: int = 3) -> RefusedCommand:
    now = time.time()
    return RefusedCommand(command=command, name=command.split()[0], count=count,
                          hosts=["web-1"], reasons=["unknown_command"], first_seen=now - 86400,
                          last_seen=now, detail="not in the policy")


CASES = [
    pytest.param(["tree -a /etc", "tree -L 2 /var/log"], id="options-and-paths"),
    pytest.param(["strings --bytes=8 /etc/hostname"], id="long-option-with-value"),
    pytest.param(["diff /etc/hostname /etc/hosts"], id="two-paths"),
    pytest.param(["sar 1 5", "sar -u 2 3"], id="numbers"),
    pytest.param(["jq -r .name"], id="text-operand"),
]


@pytest.mark.parametrize("commands", CASES)
def test_drafts_compile_with_the_targets_loader(commands):
    drafts = suggestions([refused(c) for c in commands])
    assert drafts["proposed"], drafts["not_proposed"]
    site = yaml.safe_load(drafts["ansible_vars_snippet"])["mcp_infra_readonly_extra_commands"]
    document = default_policy_document()
    document["plugins"]["site"] = {"description": "Site additions", "commands": site}
    policy = load_document(document)
    policy.validate()
    for name in site:
        assert policy.command(name).rule == f"site/{name}"


def test_a_drafted_command_plans_the_refused_request():
    drafts = suggestions([refused("tree -a /etc")])
    site = yaml.safe_load(drafts["ansible_vars_snippet"])["mcp_infra_readonly_extra_commands"]
    document = default_policy_document()
    document["plugins"]["site"] = {"commands": site}
    spec = load_document(document).command("tree")
    assert {option.name for option in spec.option_list} == {"-a"}
    with pytest.raises(Refusal) as caught:  # only what was seen: -X was never refused
        argvparse.plan(load_document(document), ["tree", "-a", "-X", "/etc"])
    assert caught.value.reason == "unknown_option"
