"""check -> run -> verify for one approved action of the PRA (plan de reprise d'activité:
the disaster-recovery plan the actions belong to), with the outcome it earns.

- `already-satisfied`: the desired state is there (check passed, and, for an action with an
  idempotency window, the same action and params changed something within the window);
  nothing was run.
- `changed`: run succeeded and verify (or, without verify, run's own exit status) confirms.
- `failed`: run or verify failed, or a check-only action's check failed.
"""
from __future__ import annotations

import os
import pwd
import time
from typing import Any

from mcp_infra_target.actions import state
from mcp_infra_target.core import runner
from mcp_infra_target.core.refusal import Refusal

SETTLE_POLL_SECONDS = 0.25
BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8", "SYSTEMD_PAGER": "cat", "PAGER": "cat", "SYSTEMD_COLORS": "0"}
# once a step's process has exited, how long its output is still awaited (a daemon it
# started may hold the pipes)
EXIT_GRACE_SECONDS = 2.0


def _identity(user: str | None) -> dict[str, Any]:
    """Runner arguments and environment for running as `user` (None: stay root)."""
    entry = pwd.getpwuid(os.geteuid()) if user is None else pwd.getpwnam(user)
    env = dict(BASE_ENV, HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)
    if user is None:
        return {"env": env}
    return {"env": env, "user": entry.pw_uid, "group": entry.pw_gid,
            "extra_groups": os.getgrouplist(entry.pw_name, entry.pw_gid)}


def run_argv(argv: list[str], timeout: float, cap: int, user: str | None = None,
             cwd: str = "/") -> dict[str, Any]:
    """Run one step's argv with the supervised runner (core.runner): no shell, fixed
    environment, stdin /dev/null, umask 022, own session, killed at `timeout` (SIGKILL at
    once: the step has failed either way), each stream kept up to `cap` bytes while the
    process goes on, optionally as `user`. Returns {argv, exit, stdout, stderr, timed_out,
    truncated, duration_ms, error}; `exit` is the raw status (negative: killed by that
    signal), None when it could not start."""
    result: dict[str, Any] = {"argv": argv, "exit": None, "stdout": "", "stderr": "",
                              "timed_out": False, "truncated": False, "duration_ms": 0,
                              "error": None}
    try:
        identity = _identity(user)
    except KeyError as exc:
        result["error"] = f"cannot start {argv[0]}: unknown user {exc}"
        return result
    streams = {"stdout": bytearray(), "stderr": bytearray()}
    outcome = runner.run(argv, identity.pop("env"), timeout,
                         lambda stream, chunk: streams[stream].extend(chunk),
                         stream_cap_bytes=cap, kill_grace_s=0, settle_s=EXIT_GRACE_SECONDS,
                         cwd=cwd, umask=0o022, **identity)
    result["duration_ms"] = int(outcome.duration_s * 1000)
    if outcome.returncode is None:
        result["error"] = f"cannot start {outcome.error}"
        return result
    result.update(exit=outcome.returncode, timed_out=outcome.timed_out,
                  truncated=outcome.truncated,
                  stdout=streams["stdout"].decode("utf-8", "replace"),
                  stderr=streams["stderr"].decode("utf-8", "replace"))
    return result


def _attempt(spec: dict[str, Any], plan: dict[str, Any], cap: int):
    result = run_argv(spec["argv"], plan["timeout"], cap, plan["user"], plan["cwd"])
    expect = spec["expect_stdout"]
    result["ok"] = (result["exit"] == 0 and not result["timed_out"]
                    and (expect is None or result["stdout"].strip() in expect))
    return result


def _step(spec: dict[str, Any] | None, plan: dict[str, Any], cap: int):
    """One step; a step with `within_seconds` (verify only) is tried again until it passes or
    that time is up, because a state right after a change may still be settling (a unit
    `activating`, a restarting daemon). The last attempt is the result."""
    if spec is None:
        return None
    within = spec.get("within_seconds")
    deadline = time.monotonic() + (within or 0)
    attempts = 0
    while True:
        attempts += 1
        result = _attempt(spec, plan, cap)
        left = deadline - time.monotonic()
        if result["ok"] or left < SETTLE_POLL_SECONDS or result["timed_out"]:
            break
        time.sleep(SETTLE_POLL_SECONDS)
    if within:
        result["attempts"] = attempts
    return result


def _satisfied(check, plan, last_done, now):
    """(satisfied, note) from the check result and the idempotency window."""
    window = plan["window"]
    if check is not None and not check["ok"]:
        return False, "check: desired state not reached"
    if window is None:
        if check is None:
            return False, "no check: this action always runs"
        return True, "check: desired state already reached"
    if last_done is not None and 0 <= now - last_done <= window:
        return True, "changed %d s ago, within the %d s idempotency window" % (
            now - last_done, window)
    return False, "not done within the %d s idempotency window" % window


def execute(plan: dict[str, Any], action: str, params: dict[str, str], state_dir: str,
            cap: int, now: int, marker: dict[str, Any]) -> dict[str, Any]:
    """Run the plan; return {outcome, note, check, run, verify} (step results or None)."""
    last_done = state.last_done(state_dir, action, params) if plan["window"] else None
    check = _step(plan["check"], plan, cap)
    satisfied, note = _satisfied(check, plan, last_done, now)
    out = {"outcome": "already-satisfied", "note": note, "check": check, "run": None,
           "verify": None}
    if satisfied:
        return out
    if plan["run"] is None:
        out.update(outcome="failed", note="check failed; this action only checks")
        return out
    out["run"] = run = _step(plan["run"], plan, cap)
    out["verify"] = verify = _step(plan["verify"], plan, cap)
    if not run["ok"]:
        out.update(outcome="failed", note="run failed")
    elif verify is not None and not verify["ok"]:
        out.update(outcome="failed", note="verify failed")
    else:
        out.update(outcome="changed", note="run succeeded" + (
            ", verify confirms" if verify is not None else " (no separate verify)"))
        if plan["window"]:
            try:
                state.mark_done(state_dir, action, params, marker)
            except (OSError, Refusal):
                out["note"] += "; could not record it for the idempotency window"
    return out
