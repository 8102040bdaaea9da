"""Drafts of policy additions from refused commands (server/learning.py): what an operator
reviews must be a spec the target's own policy loader accepts."""

from wrapper_support import default_policy_document, load_document

from mcp_linux_infra.server.learning import RefusedCommand, draft_spec


def test_a_drafted_spec_compiles_in_the_targets_own_policy_loader():
    seen = [RefusedCommand("tree -L 2 /etc", "tree", 3, ["a"], ["unknown_command"], 0, 0, ""),
            RefusedCommand("tree --charset=ascii -d /var/log", "tree", 2, ["b"],
                           ["unknown_command"], 0, 0, "")]
    spec = draft_spec("tree", seen)
    assert spec["options"] == {"-L": None, "--charset": {"type": "short_text"}, "-d": None}
    document = default_policy_document()
    document["plugins"]["site"] = {"description": "site additions", "commands": {"tree": spec}}
    assert "tree" in load_document(document).commands
