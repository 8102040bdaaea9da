"""An action's preview is the target's fact: declared in the catalog, checked by its loader,
returned by pra-exec list/show, and allowed by the shipped read-only policy for every value
the action allows."""
from __future__ import annotations

import copy
import json

import pytest
from mcp_infra_target.actions.catalog import Catalog, CatalogError, load_catalog, render_words
from mcp_infra_target.readonly import argvparse
from pra_support import SYSTEM
from wrapper_support import default_policy_document, load_document

from target.actions.test_catalog import BASE

SHIPPED = load_catalog(str(SYSTEM / "policy" / "actions.json"))
PREVIEW = {"command": ["systemctl", "is-active", "{unit}"], "explains": "is it active?"}


def catalog_with(preview):
    return Catalog({"version": 1, "settings": {},
                    "actions": {"act": dict(copy.deepcopy(BASE), preview=preview)}})


def shipped_cases():
    for name, action in sorted(SHIPPED.actions.items()):
        if action.preview is None:
            continue
        names = sorted(action.params)
        assert len(names) <= 1, "one param per previewed action in the shipped catalog"
        for value in action.params[names[0]]["values"] if names else [None]:
            params = {names[0]: value} if names else {}
            yield pytest.param(name, params, id=f"{name}-{value}")


def test_the_shipped_previews_are_the_ones_the_client_used_to_keep():
    assert {name for name, a in SHIPPED.actions.items() if a.preview} == {
        "start_service", "restart_service", "reload_service", "reset_failed_unit"}
    assert SHIPPED.actions["start_service"].preview == {
        "command": ["systemctl", "is-active", "{unit}"], "satisfied_stdout": ["active"],
        "explains": "start_service's check: is the unit active?"}


@pytest.mark.parametrize("name, params", list(shipped_cases()))
def test_every_shipped_preview_is_allowed_by_the_shipped_policy(name, params):
    """Compiled with the target's own loader and planned like a request: a preview the
    read tier would refuse is a broken catalog, found here, not at the operator's screen."""
    policy = load_document(default_policy_document())
    words = render_words(SHIPPED.actions[name].preview["command"], params)
    plan = argvparse.plan(policy, words)
    try:
        assert plan.rule.startswith("systemd/systemctl ")
    finally:
        plan.close()


@pytest.mark.parametrize("preview, message", [
    pytest.param({"command": ["systemctl"]}, r"\{command, explains", id="no-explains"),
    pytest.param(dict(PREVIEW, extra=1), r"\{command, explains", id="unknown-key"),
    pytest.param(dict(PREVIEW, command=[]), "printable words", id="empty-command"),
    pytest.param(dict(PREVIEW, command=["systemctl", ""]), "printable words", id="empty-word"),
    pytest.param(dict(PREVIEW, command=["systemctl", "a\tb"]), "printable words", id="tab"),
    pytest.param(dict(PREVIEW, command=["systemctl", "{other}"]), "names no param",
                 id="unknown-param"),
    pytest.param(dict(PREVIEW, command=["systemctl", "x{unit}"]), "whole word",
                 id="placeholder-in-a-word"),
    pytest.param(dict(PREVIEW, command=["{unit}", "status"]), "first word",
                 id="placeholder-as-command"),
    pytest.param(dict(PREVIEW, explains=" "), "explains", id="blank-explains"),
    pytest.param(dict(PREVIEW, satisfied_stdout=[]), "satisfied_stdout", id="no-lines"),
    pytest.param(dict(PREVIEW, satisfied_stdout=[1]), "satisfied_stdout", id="not-text"),
    pytest.param("systemctl is-active", r"\{command, explains", id="not-an-object"),
])
def test_a_bad_preview_is_refused(preview, message):
    with pytest.raises(CatalogError, match=message):
        catalog_with(preview)


def test_a_preview_is_part_of_the_public_form(root):
    action = catalog_with(dict(PREVIEW, satisfied_stdout=["active"])).actions["act"]
    assert action.public()["preview"] == dict(PREVIEW, satisfied_stdout=["active"])
    assert render_words(action.preview["command"], {"unit": "cron"}) == [
        "systemctl", "is-active", "cron"]
    assert catalog_with(None).actions["act"].public()["preview"] is None


def test_pra_exec_list_and_show_return_the_preview(root):
    document = json.loads((root.path / "etc/mcp-infra/actions.json").read_text())
    document["actions"]["touch_file"]["preview"] = {
        "command": ["stat", "{file}"], "explains": "the file now"}
    (root.path / "etc/mcp-infra/actions.json").write_text(json.dumps(document))
    listed = json.loads(root.pra_exec("list").stdout)
    touch = next(a for a in listed["actions"] if a["name"] == "touch_file")
    assert touch["preview"] == {"command": ["stat", "{file}"], "explains": "the file now"}
    shown = json.loads(root.pra_exec("show touch_file").stdout)
    assert shown["preview"] == touch["preview"]
