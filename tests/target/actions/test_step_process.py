"""Step execution: no shell, fixed environment, stdin /dev/null, timeout, cap, other user."""
from __future__ import annotations

import os
import pwd
import time

import pytest
from mcp_infra_target.actions import steps


def test_no_shell_is_involved(tmp_path):
    marker = tmp_path / "pwned"
    out = steps.run_argv(["/usr/bin/echo", "; touch %s" % marker, "$(id)"], 5, 1000)
    assert out["exit"] == 0 and out["stdout"] == "; touch %s $(id)\n" % marker
    assert not marker.exists()


def test_environment_is_fixed(monkeypatch):
    monkeypatch.setenv("LD_PRELOAD", "/tmp/evil.so")
    monkeypatch.setenv("MCP_INFRA_TEST_ROOT", "/tmp")
    out = steps.run_argv(["/usr/bin/env"], 5, 10000)
    env = dict(line.split("=", 1) for line in out["stdout"].splitlines())
    assert set(env) == set(steps.BASE_ENV) | {"HOME", "USER", "LOGNAME"}
    assert env["PATH"] == steps.BASE_ENV["PATH"]


@pytest.mark.parametrize("argv, cwd, expected", [
    pytest.param(["/usr/bin/cat"], None, "", id="stdin-is-dev-null"),
    pytest.param(["/usr/bin/pwd"], "TMP", "TMP", id="cwd"),
    pytest.param(["/bin/sh", "-c", "umask"], None, "0022", id="umask"),
])
def test_stdin_is_dev_null_and_cwd_and_umask(tmp_path, argv, cwd, expected):
    kwargs = {} if cwd is None else {"cwd": str(tmp_path)}
    assert steps.run_argv(argv, 5, 100, **kwargs)["stdout"].strip() == expected.replace(
        "TMP", str(tmp_path))


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def test_timeout_kills_the_whole_group():
    started = time.monotonic()
    out = steps.run_argv(["/bin/sh", "-c", "sleep 30 & echo $!; wait"], 1, 1000)
    assert out["timed_out"] and out["exit"] == -9
    assert time.monotonic() - started < 5
    time.sleep(0.2)
    assert _state(int(out["stdout"].split()[0])) in (None, "Z")


def test_leftover_children_are_killed_after_exit():
    started = time.monotonic()
    out = steps.run_argv(["/bin/sh", "-c", "sleep 30 & echo $!"], 20, 1000)
    assert out["exit"] == 0 and not out["timed_out"]
    assert time.monotonic() - started < 5
    time.sleep(0.2)
    assert _state(int(out["stdout"].split()[0])) in (None, "Z")


def test_output_is_capped():
    out = steps.run_argv(["/usr/bin/head", "-c", "100000", "/dev/zero"], 5, 1024)
    assert out["truncated"] and len(out["stdout"]) == 1024 and out["exit"] == 0
    small = steps.run_argv(["/usr/bin/echo", "x"], 5, 1024)
    assert not small["truncated"]


def test_missing_program_and_unknown_user():
    assert steps.run_argv(["/nonexistent/program"], 5, 100)["error"].startswith("cannot start")
    assert steps.run_argv(["/usr/bin/true"], 5, 100, user="no-such-user-x")["error"]


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_runs_as_another_user():
    nobody = pwd.getpwnam("nobody")
    out = steps.run_argv(["/usr/bin/id", "-u"], 5, 1000, user="nobody")
    assert out["stdout"].strip() == str(nobody.pw_uid)
    assert steps.run_argv(["/usr/bin/id", "-G"], 5, 1000, user="nobody")["stdout"].split() == \
        [str(g) for g in os.getgrouplist("nobody", nobody.pw_gid)]
    env = steps.run_argv(["/usr/bin/env"], 5, 1000, user="nobody")["stdout"]
    assert "USER=nobody" in env and "HOME=%s" % nobody.pw_dir in env


def test_exit_status_is_never_lost_to_the_cleanup_kill():
    """Pipes close just before a child becomes a zombie; a fast child must not be SIGKILLed."""
    exits = {steps.run_argv(["/usr/bin/false"], 5, 100)["exit"] for _ in range(300)}
    assert exits == {1}
