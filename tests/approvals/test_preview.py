"""The preview (approvals/preview.py): what a host's catalog declares as the read-only view of
an action's check, run through the host's read tier with the proposal's params. (That the
shipped catalog declares its previews, each allowed by the shipped read-only policy for every
value, is the target's fact: tests/target/actions/test_previews.py.)"""

import json

import pytest
from mcp_support import make_estate
from paths_support import REPO

from mcp_linux_infra.approvals.preview import preview
from mcp_linux_infra.readonly.protocol import Target

CATALOG = json.loads((REPO / "system/policy/actions.json").read_text())["actions"]


IS_ACTIVE = "systemctl --no-pager is-active nginx"  # what the wrapper runs for the preview
UNREADABLE = {"preview": {"command": ["systemctl", "is-active", "{service}"], "explains": "x"}}
REFUSED = {"preview": {"command": ["nc", "-z", "{unit}"], "explains": "x"}}

# action, its catalog entry, the read tier's answer, what the proposal says
PREVIEWS = [
    pytest.param("start_service", None, {"stdout": "active\n"},
                 {"available": True, "command": "systemctl is-active nginx", "exit_code": 0,
                  "output": "active",
                  "prediction": "already satisfied: the target will find nothing to do"},
                 id="satisfied"),
    pytest.param("start_service", None, {"stdout": "inactive\n", "exit": 3},
                 {"available": True, "command": "systemctl is-active nginx", "exit_code": 3,
                  "output": "inactive", "prediction": "not satisfied: the action will run"},
                 id="not-satisfied"),
    pytest.param("restart_service", None, {"stdout": "active\n"},
                 {"available": True, "command": "systemctl is-active nginx", "exit_code": 0,
                  "output": "active"}, id="state-without-a-prediction"),
    pytest.param("restart_container", {"params": {}}, None,
                 {"available": False,
                  "why": "web-01's catalog declares no preview for restart_container"},
                 id="no-preview-declared"),
    pytest.param("start_service", REFUSED, None,
                 {"available": False, "command": "nc -z nginx", "explains": "x",
                  "why": "the read tier answered refused: unknown_command"},
                 id="refused-by-the-read-tier"),
    pytest.param("start_service", UNREADABLE, None,
                 {"available": False,
                  "why": "web-01's catalog declares a preview for start_service this client "
                         "cannot read"}, id="placeholder-naming-no-param"),
]


@pytest.mark.parametrize(("action", "entry", "answer", "shown"), PREVIEWS)
def test_the_preview_a_proposal_carries(tmp_path, action, entry, answer, shown):
    spec = entry if entry is not None else CATALOG[action]
    estate = make_estate(tmp_path, ["web-01"],
                         extra_outputs={IS_ACTIVE: answer} if answer else None)
    state = estate.open_state()
    try:
        target = Target(state.pool, state.hosts.get().hosts["web-01"])
        got = preview(target, action, spec, {"unit": "nginx"})
    finally:
        state.close()
        estate.close()
    if "explains" not in shown and got.get("available"):
        shown = {**shown, "explains": spec["preview"]["explains"]}
    assert got == shown
