"""The action catalog: schema checks, typed params, whole-token argv rendering, default file."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from mcp_infra_target.actions.catalog import Catalog, CatalogError, ParamError, load_catalog
from pra_support import SYSTEM

DEFAULT = SYSTEM / "policy" / "actions.json"
UNIT = {"unit": {"type": "unit", "values": ["nginx", "cron"]}}
BASE = {
    "description": "d",
    "params": UNIT,
    "check": ["/usr/bin/systemctl", "is-active", "--quiet", "--", "{unit}"],
    "run": ["/usr/bin/systemctl", "restart", "--", "{unit}"],
    "verify": ["/usr/bin/systemctl", "is-active", "--quiet", "--", "{unit}"],
}


def catalog(action=None, settings=None, **changes):
    spec = copy.deepcopy(action if action is not None else BASE)
    for key, value in changes.items():
        if value is KeyError:
            spec.pop(key, None)
        else:
            spec[key] = value
    return Catalog({"version": 1, "settings": settings or {}, "actions": {"act": spec}})


def test_default_catalog_loads_with_the_issue_actions():
    loaded = load_catalog(str(DEFAULT))
    assert set(loaded.actions) == {
        "restart_service", "reload_service", "start_service", "reset_failed_unit",
        "restart_container", "rotate_logs", "flush_dns_cache", "django_manage"}
    assert loaded.settings["max_window_seconds"] == 3600
    units = loaded.actions["restart_service"].params["unit"]["values"]
    assert {"nginx", "unbound", "cron", "rsyslog", "lab-app", "lab-broken"} <= set(units)
    django = loaded.actions["django_manage"]
    assert django.user == "www-data"
    assert set(django.plans) == {"migrate", "collectstatic", "check"}


def test_default_catalog_steps_are_absolute_and_never_a_shell():
    loaded = load_catalog(str(DEFAULT))
    shells = {"sh", "bash", "dash", "zsh", "env", "sudo", "su"}
    for action in loaded.actions.values():
        for plan in action.plans.values():
            for name in ("check", "run", "verify"):
                step = plan[name]
                if step is None:
                    continue
                program = step["argv"][0]
                program = action.vars.get(program.strip("{}"), program)
                assert program.startswith("/") and Path(program).name not in shells


def test_plan_substitutes_whole_tokens_only():
    act = catalog().actions["act"]
    act.check_params({"unit": "cron"})
    plan = act.plan({"unit": "cron"})
    assert plan["run"]["argv"] == ["/usr/bin/systemctl", "restart", "--", "cron"]
    assert plan["user"] is None and plan["cwd"] == "/" and plan["timeout"] == 120


def test_vars_fill_the_executable_and_variants_select_steps():
    loaded = load_catalog(str(DEFAULT))
    plan = loaded.actions["django_manage"].plan({"command": "migrate"})
    assert plan["check"]["argv"] == ["/usr/bin/python3", "/srv/lab-app/manage.py",
                                     "migrate", "--check", "--noinput"]
    assert plan["user"] == "www-data" and plan["cwd"] == "/srv/lab-app"
    check = loaded.actions["django_manage"].plan({"command": "check"})
    assert check["run"] is None and check["verify"] is None
    docker = loaded.actions["restart_container"]
    assert docker.plans[None]["check"]["argv"][4] == "{{.State.Running}}"


@pytest.mark.parametrize("params, error", [
    ({"unit": "nginx", "x": "1"}, "unknown params"),
    ({}, "missing params"),
    ({"unit": "sshd"}, "not allowed"),
    ({"unit": "nginx "}, "not allowed"),
    ({"unit": ["nginx"]}, "not allowed"),
    ({"unit": 1}, "not allowed"),
    ([], "must be an object"),
])
def test_check_params_refuses(params, error):
    with pytest.raises(ParamError, match=error):
        catalog().actions["act"].check_params(params)


@pytest.mark.parametrize("changes", [
    {"run": ["/usr/bin/systemctl", "restart", "--unit={unit}"]},       # partial placeholder
    {"run": ["/usr/bin/systemctl", "restart", "{other}"]},              # unknown placeholder
    {"run": ["systemctl", "restart", "{unit}"]},                        # relative program
    {"run": ["{unit}"]},                                                # param as program
    {"run": []},
    {"run": "/usr/bin/systemctl restart nginx"},                        # a string, not argv
    {"check": KeyError},                                                # steps must be explicit
    {"run": None, "verify": None, "check": None},
    {"run": None},                                                      # check-only with verify
    {"params": {"unit": {"type": "unit", "values": ["-nginx"]}}},       # option-like value
    {"params": {"unit": {"type": "unit", "values": ["a b"]}}},
    {"params": {"unit": {"type": "shell", "values": ["x"]}}},
    {"params": {"unit": {"type": "unit", "values": ["a", "a"]}}},
    {"params": {"unit": {"type": "unit"}}},
    {"params": {"f": {"type": "path", "values": ["/etc/../shadow"]}}},
    {"params": {"f": {"type": "path", "values": ["relative"]}}},
    {"vars": {"unit": "/x"}},                                            # var shadows a param
    {"vars": {"v": "-x"}},
    {"user": "root;id"},
    {"cwd": "tmp"},
    {"timeout_seconds": 0},
    {"idempotency_window_seconds": True},
    {"description": ""},
    {"shell": True},                                                    # unknown key
    {"check": {"argv": ["/usr/bin/true"], "expect_stdout": []}},
    {"check": {"argv": ["/usr/bin/true"], "stdout": ["x"]}},
    {"check": {"argv": ["/usr/bin/true"], "within_seconds": 5}},        # only verify waits
    {"verify": {"argv": ["/usr/bin/true"], "within_seconds": 0}},
    {"verify": {"argv": ["/usr/bin/true"], "within_seconds": 301}},
    {"verify": {"argv": ["/usr/bin/true"], "within_seconds": 1.5}},
    {"variants": {}},                                                   # variants need variants_by
])
def test_catalog_errors(changes):
    with pytest.raises(CatalogError):
        catalog(**changes)


def test_variants_must_cover_every_allowed_value():
    spec = {"description": "d", "params": {"cmd": {"type": "word", "values": ["a", "b"]}},
            "variants_by": "cmd",
            "variants": {"a": {"check": None, "run": ["/bin/true"], "verify": None}}}
    with pytest.raises(CatalogError, match="no steps for"):
        catalog(spec)
    spec["params"]["cmd"]["values"] = ["a"]
    assert catalog(spec).actions["act"].plan({"cmd": "a"})["run"]["argv"] == ["/bin/true"]
    spec["check"] = None
    with pytest.raises(CatalogError, match="inside variants"):
        catalog(spec)


@pytest.mark.parametrize("data", [
    {"version": 2, "actions": {}},
    {"version": 1, "actions": {}, "extra": 1},
    {"version": 1, "actions": {"Bad-Name": BASE}},
    {"version": 1, "actions": []},
    {"version": 1, "settings": {"max_window_seconds": 10 ** 6}, "actions": {}},
    {"version": 1, "settings": {"unknown": 1}, "actions": {}},
])
def test_catalog_top_level_errors(data):
    with pytest.raises(CatalogError):
        Catalog(data)


def test_settings_defaults_and_overrides():
    loaded = catalog(settings={"max_window_seconds": 600})
    assert loaded.settings == {"max_window_seconds": 600, "clock_skew_seconds": 60,
                               "step_timeout_seconds": 120, "output_cap_bytes": 65536,
                               "lock_wait_seconds": 30, "min_approvals": 1,
                               "require_user_verification": False, "signers": "any",
                               "webauthn_origins": None}


def test_approval_settings_and_action_keys_are_shown():
    rules = {"min_approvals": 2, "require_user_verification": True, "signers": "security_keys",
             "webauthn_origins": ["https://approve.example.com", "http://localhost:8443"]}
    loaded = catalog(settings=rules, approvals=3, user_verification=True)
    assert {k: loaded.settings[k] for k in rules} == rules
    view = loaded.public()
    assert {k: view["settings"][k] for k in rules} == rules
    action = view["actions"][0]
    assert (action["approvals"], action["user_verification"]) == (3, True)
    default = catalog().public()["actions"][0]
    assert (default["approvals"], default["user_verification"]) == (1, False)


@pytest.mark.parametrize("settings, changes", [
    ({"min_approvals": 0}, {}), ({"min_approvals": 10}, {}), ({"min_approvals": True}, {}),
    ({"require_user_verification": 1}, {}), ({"signers": "keys"}, {}),
    ({"webauthn_origins": []}, {}), ({"webauthn_origins": "https://a.example"}, {}),
    ({"webauthn_origins": ["https://a.example/path"]}, {}),
    ({"webauthn_origins": ["ftp://a.example"]}, {}),
    ({}, {"approvals": 0}), ({}, {"approvals": 10}), ({}, {"approvals": "2"}),
    ({}, {"user_verification": "yes"}),
])
def test_approval_rules_are_checked(settings, changes):
    with pytest.raises(CatalogError):
        catalog(settings=settings, **changes)


def test_load_catalog_refuses_duplicate_keys_and_garbage(tmp_path):
    path = tmp_path / "actions.json"
    path.write_text('{"version": 1, "version": 1, "actions": {}}')
    with pytest.raises(CatalogError, match="duplicate"):
        load_catalog(str(path))
    path.write_bytes(b"\xff")
    with pytest.raises(CatalogError):
        load_catalog(str(path))
    with pytest.raises(CatalogError):
        load_catalog(str(tmp_path / "missing.json"))


def test_public_view_shows_what_would_run():
    view = json.loads(json.dumps(load_catalog(str(DEFAULT)).public()))
    restart = next(a for a in view["actions"] if a["name"] == "restart_service")
    assert restart["steps"]["idempotency_window_seconds"] == 300
    assert restart["runs_as"] == "root"
    django = next(a for a in view["actions"] if a["name"] == "django_manage")
    assert django["variants_by"] == "command" and "migrate" in django["variants"]
