"""The action catalog of the PRA (plan de reprise d'activité: the disaster-recovery plan the
actions belong to), `actions.json`: load, check, validate params, render argv.

An action is data: typed params whose values must come from the host's allowed lists, and
`check`, `run`, `verify` steps, each an argv template. A placeholder is a whole argv element
`{name}` naming a param or a var; nothing is ever formatted into a string or given to a shell.
An action may declare a `preview`: a read-only command (words of the read tier's policy,
with whole-word `{param}` placeholders) that shows the state the action would act on before
anyone approves it; `pra-exec list` and `show` hand it to the MCP server with the action.
"""
from __future__ import annotations

import re
from typing import Any

from mcp_infra_target.core import strictjson

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
PLACEHOLDER_RE = re.compile(r"\{([a-z][a-z0-9_]{0,63})\}\Z")
USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")
VALUE_RES = {
    "unit": re.compile(r"[A-Za-z0-9_@.:\\][A-Za-z0-9_@.:\\-]{0,254}\Z"),
    "container": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z"),
    "path": re.compile(r"/[A-Za-z0-9_@.+/-]{0,4095}\Z"),
    "word": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}\Z"),
}
# name: (default, minimum, maximum)
SETTINGS = {
    "max_window_seconds": (3600, 60, 86400),
    "clock_skew_seconds": (60, 0, 600),
    "step_timeout_seconds": (120, 1, 3600),
    "output_cap_bytes": (65536, 1024, 1048576),
    "lock_wait_seconds": (30, 0, 600),
}
# approvals (issue 11): how many distinct operators, and what a security key must attest.
# The document may ask for more approvals, never fewer (run.py takes the maximum).
MAX_APPROVALS = 9
SIGNERS = ("any", "security_keys")
ORIGIN_RE = re.compile(r"https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?\Z")
MAX_ORIGINS = 16
APPROVAL_SETTINGS = ("min_approvals", "require_user_verification", "signers",
                     "webauthn_origins")
STEP_NAMES = ("check", "run", "verify")
STEP_SET_KEYS = {"check", "run", "verify", "idempotency_window_seconds", "timeout_seconds"}
ACTION_KEYS = {"description", "params", "vars", "user", "cwd", "timeout_seconds",
               "variants_by", "variants", "preview", "approvals",
               "user_verification"} | STEP_SET_KEYS
PREVIEW_KEYS = {"command", "explains", "satisfied_stdout"}
PREVIEW_MAX_WORDS = 32
MAX_ACTIONS = 256
MAX_PARAMS = 16
MAX_VALUES = 1024


class CatalogError(ValueError):
    """The catalog file is missing, unreadable or breaks the schema."""


class ParamError(ValueError):
    """Signed params do not match the action's typed params exactly."""


def _int(value, low, high, where):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CatalogError("%s: integer %d..%d expected" % (where, low, high))
    return value


def _bool(value, where):
    if not isinstance(value, bool):
        raise CatalogError(f"{where}: true or false expected")
    return value


def _approval_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The host's approval rules; absent keys take the defaults (one approval, any signer,
    no user verification required, any WebAuthn origin)."""
    origins = settings.get("webauthn_origins")
    if origins is not None and (
            not isinstance(origins, list) or not 0 < len(origins) <= MAX_ORIGINS
            or not all(isinstance(o, str) and ORIGIN_RE.match(o) for o in origins)):
        raise CatalogError("settings.webauthn_origins: a list of 1..%d origins "
                           "(http[s]://host[:port]) expected" % MAX_ORIGINS)
    signers = settings.get("signers", "any")
    if signers not in SIGNERS:
        raise CatalogError("settings.signers: one of %s expected" % ", ".join(SIGNERS))
    return {"min_approvals": _int(settings.get("min_approvals", 1), 1, MAX_APPROVALS,
                                  "settings.min_approvals"),
            "require_user_verification": _bool(settings.get("require_user_verification", False),
                                               "settings.require_user_verification"),
            "signers": signers, "webauthn_origins": origins}


def _abs_path(value, where):
    if not isinstance(value, str) or not VALUE_RES["path"].match(value):
        raise CatalogError(f"{where}: absolute path expected")
    parts = value.split("/")[1:]
    if any(part in ("", ".", "..") for part in parts) and value != "/":
        raise CatalogError(f"{where}: path must be normalised")
    return value


def _check_value(kind, value, where):
    if not isinstance(value, str) or not VALUE_RES[kind].match(value):
        raise CatalogError(f"{where}: {value!r} is not a valid {kind}")
    if kind == "path":
        _abs_path(value, where)


def check_params(specs: dict[str, dict[str, Any]], params: Any) -> None:
    """Refuse unless `params` are exactly the params `specs` describes ({name: {type, values}},
    as an action's public form lists them), each one of its allowed values. A pure function:
    the MCP server runs this same check on a host's `list` answer before it proposes."""
    if not isinstance(params, dict):
        raise ParamError("params must be an object")
    unknown = sorted(set(params) - set(specs))
    if unknown:
        raise ParamError(f"unknown params {unknown}")
    missing = sorted(set(specs) - set(params))
    if missing:
        raise ParamError(f"missing params {missing}")
    for pname, spec in sorted(specs.items()):
        if not isinstance(params[pname], str) or params[pname] not in spec["values"]:
            raise ParamError(f"value of {pname!r} is not allowed on this host")


class Action:
    """One validated action; `plans` maps a variant key (None if no variants) to its steps."""

    def __init__(self, name: str, data: dict[str, Any], settings: dict[str, int]):
        where = f"actions.{name}"
        if not NAME_RE.match(name):
            raise CatalogError(f"{where}: bad action name")
        if not isinstance(data, dict) or set(data) - ACTION_KEYS:
            raise CatalogError(f"{where}: unknown keys {sorted(set(data) - ACTION_KEYS)}")
        self.name = name
        self.description = data.get("description")
        if not isinstance(self.description, str) or not self.description.strip():
            raise CatalogError(f"{where}.description: text expected")
        self.params = self._parse_params(data.get("params", {}), where)
        self.vars = self._parse_vars(data.get("vars", {}), where)
        self.user = data.get("user")
        if self.user is not None and not (isinstance(self.user, str)
                                          and USER_RE.match(self.user)):
            raise CatalogError(f"{where}.user: user name expected")
        self.cwd = _abs_path(data.get("cwd", "/"), where + ".cwd")
        self.preview = self._parse_preview(data.get("preview"), where + ".preview")
        self.approvals = _int(data.get("approvals", 1), 1, MAX_APPROVALS, where + ".approvals")
        self.user_verification = _bool(data.get("user_verification", False),
                                       where + ".user_verification")
        timeout = data.get("timeout_seconds", settings["step_timeout_seconds"])
        self.timeout = _int(timeout, 1, 3600, where + ".timeout_seconds")
        self.variants_by = data.get("variants_by")
        if self.variants_by is None:
            if "variants" in data:
                raise CatalogError(f"{where}: variants need variants_by")
            steps = {k: data[k] for k in STEP_SET_KEYS - {"timeout_seconds"} if k in data}
            self.plans = {None: self._parse_steps(steps, where)}
        else:
            self.plans = self._parse_variants(data, where)

    def _parse_params(self, params, where):
        if not isinstance(params, dict) or len(params) > MAX_PARAMS:
            raise CatalogError("%s.params: object of at most %d params expected"
                               % (where, MAX_PARAMS))
        out = {}
        for pname, spec in params.items():
            pwhere = f"{where}.params.{pname}"
            if (not NAME_RE.match(pname) or not isinstance(spec, dict)
                    or set(spec) != {"type", "values"}):
                raise CatalogError(f"{pwhere}: {{type, values}} expected")
            kind, values = spec["type"], spec["values"]
            if kind not in VALUE_RES or not isinstance(values, list) or len(values) > MAX_VALUES:
                raise CatalogError(f"{pwhere}: type one of {sorted(VALUE_RES)} and a list of "
                                   "values expected")
            for value in values:
                _check_value(kind, value, pwhere)
            if len(set(values)) != len(values):
                raise CatalogError(f"{pwhere}: duplicate values")
            out[pname] = {"type": kind, "values": list(values)}
        return out

    def _parse_preview(self, preview, where):
        """{command, explains, satisfied_stdout?}: the read tier's words, literals or whole-word
        `{param}` placeholders (params only: a var is the target's own business)."""
        if preview is None:
            return None
        if not isinstance(preview, dict) or set(preview) - PREVIEW_KEYS or not {
                "command", "explains"} <= set(preview):
            raise CatalogError(f"{where}: {{command, explains, satisfied_stdout?}} expected")
        command = preview["command"]
        if (not isinstance(command, list) or not 0 < len(command) <= PREVIEW_MAX_WORDS
                or not all(isinstance(w, str) and w and w.isprintable() for w in command)):
            raise CatalogError("%s.command: 1..%d printable words expected"
                               % (where, PREVIEW_MAX_WORDS))
        for word in command:
            match = PLACEHOLDER_RE.match(word)
            if match and match.group(1) not in self.params:
                raise CatalogError(f"{where}.command: {word} names no param")
            if not match and "{" in word:
                raise CatalogError(f"{where}.command: placeholder must be a whole word: {word!r}")
        if PLACEHOLDER_RE.match(command[0]):
            raise CatalogError(f"{where}.command: the first word is a command name")
        explains = preview["explains"]
        if not isinstance(explains, str) or not explains.strip():
            raise CatalogError(f"{where}.explains: text expected")
        satisfied = preview.get("satisfied_stdout")
        if satisfied is not None and (not isinstance(satisfied, list) or not satisfied
                                      or not all(isinstance(line, str) for line in satisfied)):
            raise CatalogError(f"{where}.satisfied_stdout: non-empty list of text expected")
        out = {"command": list(command), "explains": explains}
        if satisfied is not None:
            out["satisfied_stdout"] = list(satisfied)
        return out

    def _parse_vars(self, variables, where):
        if not isinstance(variables, dict):
            raise CatalogError(f"{where}.vars: object expected")
        for vname, value in variables.items():
            if not NAME_RE.match(vname) or vname in self.params:
                raise CatalogError(f"{where}.vars.{vname}: bad or duplicate name")
            if not isinstance(value, str) or not value or "\0" in value or value.startswith("-"):
                raise CatalogError(f"{where}.vars.{vname}: non-empty text not starting with '-'")
        return dict(variables)

    def _parse_variants(self, data, where):
        if self.variants_by not in self.params:
            raise CatalogError(f"{where}.variants_by: must name a param")
        if STEP_SET_KEYS & set(data) - {"timeout_seconds"}:
            raise CatalogError(f"{where}: steps belong inside variants")
        variants = data.get("variants")
        if not isinstance(variants, dict):
            raise CatalogError(f"{where}.variants: object expected")
        missing = set(self.params[self.variants_by]["values"]) - set(variants)
        if missing:
            raise CatalogError(f"{where}.variants: no steps for {sorted(missing)}")
        return {key: self._parse_steps(steps, f"{where}.variants.{key}")
                for key, steps in variants.items()}

    def _parse_steps(self, steps, where):
        if (not isinstance(steps, dict) or set(steps) - STEP_SET_KEYS
                or not set(STEP_NAMES) <= set(steps)):
            raise CatalogError(f"{where}: check, run and verify (each may be null) expected")
        out = {name: self._parse_step(steps[name], f"{where}.{name}") for name in STEP_NAMES}
        for name in ("check", "run"):
            if out[name] is not None and out[name]["within_seconds"] is not None:
                raise CatalogError(f"{where}.{name}.within_seconds: only verify may wait to settle")
        window = steps.get("idempotency_window_seconds")
        out["idempotency_window_seconds"] = None if window is None else _int(
            window, 1, 86400, where + ".idempotency_window_seconds")
        out["timeout_seconds"] = _int(steps.get("timeout_seconds", self.timeout), 1, 3600,
                                      where + ".timeout_seconds")
        if out["run"] is None and (out["check"] is None or out["verify"] is not None or window):
            raise CatalogError(f"{where}: an action without run is a check only (no verify, "
                               "no window)")
        return out

    def _parse_step(self, step, where):
        if step is None:
            return None
        expect = within = None
        if isinstance(step, dict):
            if set(step) - {"argv", "expect_stdout", "within_seconds"} or "argv" not in step:
                raise CatalogError(f"{where}: {{argv, expect_stdout, within_seconds}} expected")
            expect = step.get("expect_stdout")
            within = step.get("within_seconds")
            if within is not None:
                _int(within, 1, 300, where + ".within_seconds")
            if expect is not None and (not isinstance(expect, list) or not expect
                                       or not all(isinstance(e, str) for e in expect)):
                raise CatalogError(f"{where}.expect_stdout: non-empty list of text expected")
            step = step["argv"]
        if not isinstance(step, list) or not step or not all(isinstance(a, str) for a in step):
            raise CatalogError(f"{where}: non-empty argv list expected")
        names = set(self.params) | set(self.vars)
        for arg in step:
            match = PLACEHOLDER_RE.match(arg)
            if match and match.group(1) not in names:
                raise CatalogError(f"{where}: unknown placeholder {arg}")
            if not match and any(f"{{{name}}}" in arg for name in names):
                raise CatalogError(f"{where}: placeholder must be a whole argv element: {arg!r}")
            if "\0" in arg:
                raise CatalogError(f"{where}: NUL in argv")
        exe = PLACEHOLDER_RE.match(step[0])
        program = self.vars.get(exe.group(1)) if exe else step[0]
        if program is None or not program.startswith("/"):
            raise CatalogError(f"{where}: argv[0] must be an absolute path (literal or var)")
        return {"argv": list(step), "expect_stdout": expect, "within_seconds": within}

    def public(self) -> dict[str, Any]:
        """The action as `list`/`show` present it: what this host allows and would run."""
        out = {"name": self.name, "description": self.description, "params": self.params,
               "runs_as": self.user or "root", "cwd": self.cwd, "vars": self.vars,
               "preview": self.preview, "approvals": self.approvals,
               "user_verification": self.user_verification}
        if self.variants_by is None:
            out["steps"] = self.plans[None]
        else:
            out["variants_by"] = self.variants_by
            out["variants"] = self.plans
        return out

    def check_params(self, params: Any) -> None:
        """Refuse unless `params` are exactly this action's params, each an allowed value."""
        check_params(self.params, params)

    def plan(self, params: dict[str, str]) -> dict[str, Any]:
        """Steps with placeholders replaced; `params` must have passed check_params."""
        steps = self.plans[params[self.variants_by] if self.variants_by else None]
        values = dict(self.vars, **params)

        def render(step: dict[str, Any] | None):
            return None if step is None else dict(step, argv=render_words(step["argv"], values))

        plan = {name: render(steps[name]) for name in STEP_NAMES}
        plan.update(window=steps["idempotency_window_seconds"], timeout=steps["timeout_seconds"],
                    user=self.user, cwd=self.cwd)
        return plan


def render_words(words: list[str], values: dict[str, str]) -> list[str]:
    """`words` with each whole-word `{name}` placeholder replaced by its value: a step's argv
    (params and vars), a preview's command (params). `values` were checked before."""
    rendered = []
    for word in words:
        match = PLACEHOLDER_RE.match(word)
        rendered.append(values[match.group(1)] if match else word)
    return rendered


class Catalog:
    """Settings and actions of one host."""

    def __init__(self, data: Any):
        if not isinstance(data, dict) or set(data) - {"version", "settings", "actions"}:
            raise CatalogError("top level: {version, settings, actions} expected")
        if data.get("version") != 1:
            raise CatalogError("version: 1 expected")
        settings = data.get("settings", {})
        known = set(SETTINGS) | set(APPROVAL_SETTINGS)
        if not isinstance(settings, dict) or set(settings) - known:
            raise CatalogError(f"settings: known keys are {sorted(known)}")
        self.settings = {name: _int(settings.get(name, default), low, high, "settings." + name)
                         for name, (default, low, high) in SETTINGS.items()}
        self.settings.update(_approval_settings(settings))
        actions = data.get("actions")
        if not isinstance(actions, dict) or len(actions) > MAX_ACTIONS:
            raise CatalogError("actions: object expected")
        self.actions = {name: Action(name, spec, self.settings) for name, spec in actions.items()}

    def public(self) -> dict[str, Any]:
        """The catalog as `list` presents it."""
        return {"settings": self.settings,
                "actions": [self.actions[name].public() for name in sorted(self.actions)]}


def load_catalog(path: str) -> Catalog:
    """Read and check the catalog file; any problem is a CatalogError."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(4 * 1024 * 1024 + 1)
        if len(raw) > 4 * 1024 * 1024:
            raise CatalogError("catalog larger than 4 MiB")
        data = strictjson.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, CatalogError):
            raise
        raise CatalogError(f"cannot read {path}: {exc}") from None
    return Catalog(data)
