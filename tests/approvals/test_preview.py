"""The preview data (data/action_previews.json): every entry names a catalog action, uses only
that action's params, and is a command the default read-only policy allows, so a preview is
never a refusal on a target that runs the default policy."""

import json
import shlex

import pytest
from paths_support import REPO
from wrapper_support import default_policy_document, make_root, remove_root, run_wrapper

from mcp_linux_infra.approvals.preview import PREVIEWS

CATALOG = json.loads((REPO / "system/policy/actions.json").read_text())["actions"]
SAMPLE = {"unit": "nginx.service", "path": "/etc/logrotate.d/nginx", "word": "migrate",
          "container": "web"}


@pytest.fixture(scope="module")
def root():
    made = make_root(default_policy_document())
    yield made
    remove_root(made)


@pytest.mark.parametrize("action", sorted(PREVIEWS))
def test_a_preview_is_allowed_by_the_default_policy(root, action):
    assert action in CATALOG
    params = {p: SAMPLE[spec["type"]] for p, spec in CATALOG[action]["params"].items()}
    words = [w.format(**params) for w in PREVIEWS[action]["command"]]
    done = run_wrapper(root, "mcp:explain " + shlex.join(words))
    verdict = json.loads(done.stdout)
    assert verdict["allowed"] is True, verdict
    assert PREVIEWS[action]["explains"]
