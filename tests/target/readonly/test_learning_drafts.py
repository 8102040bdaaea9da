"""Learning drafts (the MCP server's policy snippets for commands the hosts keep refusing) are
compiled by the target's own policy loader, as the role would render them (plugin "site"):
a draft an operator adds must never break a host's policy."""
from __future__ import annotations

import time

import pytest
import yaml
from mcp_infra_target.core.refusal import Refusal
from mcp_infra_target.readonly import argvparse
from wrapper_support import default_policy_document, load_document

from mcp_linux_infra.learning import RefusedCommand
from mcp_linux_infra.server.tools_learning import suggestions


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
