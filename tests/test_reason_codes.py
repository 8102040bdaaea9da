"""The refusal reasons the client branches on are reasons the targets document
(system/README.md), so a code renamed on the target cannot silently turn a branch of the
client into dead code. None of them was renamed from the previous version, so the client
accepts no earlier spelling of any (it would be listed here, with the version that sends it)."""

import re

import pytest
from paths_support import REPO

SRC = REPO / "src/mcp_linux_infra"
DOCUMENTED = set(re.findall(r"`([a-z]+(?:_[a-z]+)+|busy|expired|empty)`",
                            (REPO / "system/README.md").read_text()))

# module: the reasons it branches on (what it explains, retries or records differently)
BRANCHES = {
    "server/answers.py": ["destination_not_allowed", "option_required", "bad_value",
                          "control_char", "unicode_format_char", "non_printable_char"],
    "server/tools/network.py": ["destination_not_allowed"],
    "server/tools/commands.py": ["destination_not_allowed"],
    "server/learning.py": ["unknown_command", "command_not_installed",
                           "destination_not_allowed"],
    "approvals/executor.py": ["replayed_nonce", "busy", "not_yet_valid", "expired",
                              "bad_signature", "wrong_host", "unknown_signer",
                              "signer_not_valid", "window_too_long"],
}


@pytest.mark.parametrize(("module", "reason"), [
    pytest.param(module, reason, id=f"{module}:{reason}")
    for module, reasons in BRANCHES.items() for reason in reasons])
def test_a_reason_the_client_branches_on_is_documented(module, reason):
    assert f'"{reason}"' in (SRC / module).read_text()
    assert reason in DOCUMENTED
