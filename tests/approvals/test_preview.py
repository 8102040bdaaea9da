"""The preview (approvals/preview.py): what a host's catalog declares as the read-only view of
an action's check, run through the host's read tier with the proposal's params; and the
default catalog's previews, each allowed by the default read-only policy, so a preview is
never a refusal on a target that runs the default policies."""

import json
import shlex

import pytest
from mcp_support import fake_root, make_estate
from paths_support import REPO
from wrapper_support import remove_root, run_wrapper

from mcp_linux_infra.approvals.preview import preview, preview_argv
from mcp_linux_infra.readonly.protocol import Target

CATALOG = json.loads((REPO / "system/policy/actions.json").read_text())["actions"]
SAMPLE = {"unit": "nginx.service", "path": "/etc/logrotate.d/nginx", "word": "migrate",
          "container": "web"}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    made = fake_root(tmp_path_factory.mktemp("previews"))
    yield made
    remove_root(made)


def test_the_default_catalog_declares_its_previews():
    assert {name for name, a in CATALOG.items() if a.get("preview")} >= {
        "start_service", "restart_service", "reload_service", "reset_failed_unit"}


@pytest.mark.parametrize("action", sorted(a for a in CATALOG if CATALOG[a].get("preview")))
def test_a_preview_is_allowed_by_the_default_policy(root, action):
    params = {p: SAMPLE[spec["type"]] for p, spec in CATALOG[action]["params"].items()}
    words = preview_argv(CATALOG[action]["preview"], params)
    verdict = json.loads(run_wrapper(root, "mcp:explain " + shlex.join(words)).stdout)
    assert verdict["allowed"] is True, verdict
    assert CATALOG[action]["preview"]["explains"]


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
