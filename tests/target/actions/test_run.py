"""pra-run's accepted path: check -> run -> verify, outcomes, result and log formats, config."""
from __future__ import annotations

import fcntl
import json
import os
import stat
import time

import pytest
from mcp_infra_target.actions import state as pra_state
from pra_support import refusal, result

RESULT_KEYS = {"outcome", "note", "action", "params", "proposal", "nonce", "approver", "host",
               "step", "principals", "trace", "check", "run", "verify", "durations_ms"}
STEP_KEYS = {"argv", "exit", "ok", "stdout", "stderr", "timed_out", "truncated", "duration_ms",
             "error"}


def approve(root, **doc):
    return root.pra_run(root.envelope(root.document(**doc)))


def test_changed_then_already_satisfied(root):
    first = result(approve(root))
    assert set(first) == RESULT_KEYS and set(first["run"]) == STEP_KEYS
    assert first["outcome"] == "changed"
    assert first["check"]["exit"] == 1 and first["run"]["exit"] == 0 and first["verify"]["ok"]
    assert first["run"]["argv"] == ["/usr/bin/touch", "--", root.file("a")]
    assert os.path.exists(root.file("a"))
    second = result(approve(root))
    assert second["outcome"] == "already-satisfied"
    assert second["run"] is None and second["verify"] is None and second["check"]["ok"]
    assert [line["outcome"] for line in root.log()] == ["changed", "already-satisfied"]


def test_idempotency_window(root):
    doc = {"action": "touch_windowed"}
    assert result(approve(root, **doc))["outcome"] == "changed"
    again = result(approve(root, **doc))
    assert again["outcome"] == "already-satisfied" and "idempotency window" in again["note"]
    assert again["check"] is None
    other = result(approve(root, action="touch_windowed", params={"file": root.file("b")}))
    assert other["outcome"] == "changed"
    marker_dir = root.path / "var/lib/mcp-infra/done"
    for marker in marker_dir.iterdir():
        marker.write_text(json.dumps({"time": int(time.time()) - 301}))
    assert result(approve(root, **doc))["outcome"] == "changed"


def test_window_combined_with_check(root):
    """Satisfied only while the check passes AND the last change is recent."""
    root.write_catalog({"restart_like": {
        "description": "file must exist and have been touched within the window",
        "params": {"file": {"type": "path", "values": [root.file("a")]}},
        "check": ["/usr/bin/test", "-e", "{file}"], "run": ["/usr/bin/touch", "{file}"],
        "verify": ["/usr/bin/test", "-e", "{file}"], "idempotency_window_seconds": 300}})
    open(root.file("a"), "w").close()
    assert result(approve(root, action="restart_like"))["outcome"] == "changed"
    assert result(approve(root, action="restart_like"))["outcome"] == "already-satisfied"
    os.unlink(root.file("a"))
    assert result(approve(root, action="restart_like"))["outcome"] == "changed"


def test_check_only_action(root):
    root.write_catalog({"probe": {
        "description": "check only",
        "params": {"file": {"type": "path", "values": [root.file("a")]}},
        "check": ["/usr/bin/test", "-e", "{file}"], "run": None, "verify": None}})
    proc = approve(root, action="probe")
    assert proc.returncode == 1 and result(proc)["outcome"] == "failed"
    assert result(proc)["run"] is None
    open(root.file("a"), "w").close()
    assert result(approve(root, action="probe"))["outcome"] == "already-satisfied"


def test_expect_stdout_and_verify_failure(root):
    root.write_catalog({"says_no": {
        "description": "check wants 'yes'; verify says 'no' too",
        "check": {"argv": ["/usr/bin/echo", "no"], "expect_stdout": ["yes"]},
        "run": ["/usr/bin/true"],
        "verify": {"argv": ["/usr/bin/echo", "no"], "expect_stdout": ["yes"]}}})
    out = result(approve(root, action="says_no", params={}))
    assert out["check"]["exit"] == 0 and not out["check"]["ok"]
    assert out["outcome"] == "failed" and out["note"] == "verify failed"
    assert out["verify"]["stdout"] == "no\n"


def test_verify_waits_to_settle(root):
    """A state that settles after the change (a unit still activating) passes on a later
    attempt; one that never settles fails once its time is up, with the last attempt kept."""
    root.write_catalog({"settles": {
        "description": "the file appears a moment after run returns",
        "params": {"file": {"type": "path", "values": [root.file("a")]}},
        "check": ["/usr/bin/test", "-e", "{file}"],
        "run": ["/usr/bin/setsid", "-f", "/usr/bin/sh", "-c", "exec >/dev/null 2>&1; sleep 0.6; touch \"$0\"",
                "{file}"],
        "verify": {"argv": ["/usr/bin/test", "-e", "{file}"], "within_seconds": 10}},
        "never": {
        "description": "verify never passes",
        "check": None, "run": ["/usr/bin/true"],
        "verify": {"argv": ["/usr/bin/false"], "within_seconds": 1}}})
    out = result(approve(root, action="settles"))
    assert out["outcome"] == "changed" and out["verify"]["attempts"] > 1, out
    assert root.log()[-1]["verify"]["attempts"] == out["verify"]["attempts"]
    started = time.monotonic()
    out = result(approve(root, action="never", params={}))
    assert out["outcome"] == "failed" and out["note"] == "verify failed"
    assert 3 <= out["verify"]["attempts"] <= 5 and time.monotonic() - started < 10


def test_step_timeout_and_output_cap(root):
    root.write_catalog({"slow": {
        "description": "check hangs, run is loud",
        "timeout_seconds": 1,
        "check": ["/usr/bin/sleep", "30"],
        "run": ["/usr/bin/head", "-c", "5000", "/dev/zero"],
        "verify": None}}, settings={"output_cap_bytes": 1024})
    started = time.monotonic()
    out = result(approve(root, action="slow", params={}))
    assert time.monotonic() - started < 10
    assert out["check"]["timed_out"] and not out["check"]["ok"]
    assert out["run"]["truncated"] and len(out["run"]["stdout"]) == 1024
    assert out["outcome"] == "changed"


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_runs_as_the_action_user(root):
    root.write_catalog({"as_nobody": {
        "description": "check passes only as nobody", "user": "nobody", "cwd": "/tmp",
        "check": {"argv": ["/usr/bin/id", "-un"], "expect_stdout": ["nobody"]},
        "run": None, "verify": None}})
    out = result(approve(root, action="as_nobody", params={}))
    assert out["outcome"] == "already-satisfied", out


def test_clock_skew_allowed_for_not_before_only(root):
    now = int(time.time())
    assert result(approve(root, not_before=now + 30, not_after=now + 600))["outcome"] == "changed"


def test_max_window_setting(root):
    root.write_catalog(settings={"max_window_seconds": 600})
    now = int(time.time())
    assert refusal(approve(root, not_before=now - 10, not_after=now + 591))["reason"] == \
        "window_too_long"
    assert result(approve(root, not_before=now - 10, not_after=now + 590))["outcome"] == "changed"


def test_one_action_at_a_time(root):
    """While another action holds the run lock: refused `busy`, and the nonce is not used."""
    root.write_catalog(settings={"lock_wait_seconds": 1})
    data = root.envelope()
    approve(root)  # creates the state directory and the lock file
    os.unlink(root.file("a"))
    with open(root.path / "var/lib/mcp-infra/run.lock") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        assert refusal(root.pra_run(data))["reason"] == "busy"
        assert 1 <= time.monotonic() - started < 5
    assert not os.path.exists(root.file("a"))
    assert result(root.pra_run(data))["outcome"] == "changed"


def test_log_line_format_and_mode(root):
    result(approve(root, proposal="prop-9"))
    log_path = root.path / "var/log/mcp-infra/pra-run.log"
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o640
    line = root.log()[-1]
    assert line["event"] == "pra-run" and line["decision"] == "accepted"
    assert line["proposal"] == "prop-9" and line["approver"] == "alice"
    assert line["signer_key"].startswith("SHA256:")
    assert set(line["durations_ms"]) == {"signature", "lock_wait", "steps", "total"}
    assert "stdout" not in line["run"]
    assert root.syslog()[-1] == line


def test_step_output_never_reaches_the_log(root):
    """The client gets every step's output; the log (file and syslog) keeps its status only."""
    mark = "STEP-OUTPUT-" + os.urandom(4).hex()
    loud = ["/usr/bin/sh", "-c", 'echo "$0"; echo "$0" >&2; exit "$1"', mark]
    root.write_catalog({"chatty": {"description": "every step prints", "params": {},
                                   "check": loud + ["1"], "run": loud + ["0"],
                                   "verify": loud + ["0"]}})
    out = result(approve(root, action="chatty", params={}))
    assert out["outcome"] == "changed"
    assert all(mark in out[step][stream] for step in ("check", "run", "verify")
               for stream in ("stdout", "stderr"))
    for path in ("var/log/mcp-infra/pra-run.log", "var/log/mcp-wrapper-audit.jsonl"):
        assert mark not in (root.path / path).read_text()
    assert set(root.log()[-1]["run"]) == {"exit", "ok", "timed_out", "truncated",
                                          "duration_ms", "error"}


def test_closed_windows_leave_the_ledger_after_an_accepted_attempt(root):
    """Entries whose window closed more than clock_skew_seconds ago are removed; entries of
    open windows, and the one just used, stay."""
    root.write_catalog(settings={"clock_skew_seconds": 30})
    now = int(time.time())
    state = str(root.path / "var/lib/mcp-infra")
    nonces = {"closed": now - 31 - 5, "in_skew": now - 5, "open": now + 600}
    nonces = {os.urandom(16).hex(): (name, not_after) for name, not_after in nonces.items()}
    for nonce, (name, not_after) in nonces.items():
        pra_state.record_nonce(state, nonce, {"not_after": not_after, "proposal": name})
    doc = root.document()
    assert result(root.pra_run(root.envelope(doc)))["outcome"] == "changed"
    left = {name for nonce, (name, _) in nonces.items() if root.ledger_file(nonce).exists()}
    assert left == {"in_skew", "open"} and root.ledger_file(doc["nonce"]).exists()
    assert root.log()[-1]["ledger"] == {"scanned": 4, "removed": 1, "kept": 3, "unreadable": 0}


def test_a_replay_is_refused_inside_the_window_and_expired_after_it(root):
    """Pruning never reopens a nonce: inside its window the entry is there (replayed_nonce);
    after it, the document itself is refused `expired` before the ledger is consulted."""
    root.write_catalog(settings={"clock_skew_seconds": 0})
    now = int(time.time())
    doc = root.document(not_before=now - 10, not_after=now + 5)
    data = root.envelope(doc)
    assert result(root.pra_run(data))["outcome"] == "changed"
    os.unlink(root.file("a"))
    assert result(approve(root, params={"file": root.file("b")}))["outcome"] == "changed"
    assert root.ledger_file(doc["nonce"]).exists()
    assert refusal(root.pra_run(data))["reason"] == "replayed_nonce"
    while time.time() < doc["not_after"] + 1:  # the wall clock passing the window, no process
        time.sleep(0.1)
    assert result(approve(root, params={"file": root.file("c")}))["outcome"] == "changed"
    assert not root.ledger_file(doc["nonce"]).exists()
    assert refusal(root.pra_run(data))["reason"] == "expired"
    assert not os.path.exists(root.file("a"))


@pytest.mark.parametrize("breakage, rule", [
    (lambda r: (r.path / "etc/mcp-infra/host-id").unlink(), "config/host_id"),
    (lambda r: (r.path / "etc/mcp-infra/host-id").write_text("bad host\n"), "config/host_id"),
    (lambda r: (r.path / "etc/mcp-infra/actions.json").write_text("{}"), "config/catalog"),
    (lambda r: (r.path / "etc/mcp-infra/allowed_signers").unlink(), "config/allowed_signers"),
    (lambda r: os.chmod(r.path / "var/lib/mcp-infra", 0o777), "config/state_dir"),
    (lambda r: os.chmod(r.path / "etc/mcp-infra/allowed_signers", 0o666), "config/allowed_signers"),
    (lambda r: os.chmod(r.path / "etc/mcp-infra/actions.json", 0o620), "config/catalog"),
    (lambda r: os.chmod(r.path / "etc/mcp-infra", 0o777), "config/catalog"),
    pytest.param(lambda r: os.chown(r.path / "etc/mcp-infra/host-id", 65534, 65534), "config/host_id",
                 marks=pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")),
])
def test_config_errors_refuse_and_log(root, breakage, rule):
    breakage(root)
    answer = refusal(approve(root))
    assert answer["reason"] == "config_error" and answer["rule"] == rule
    assert root.log()[-1]["refusal"]["rule"] == rule
    assert not os.path.exists(root.file("a"))


def test_unusable_log_means_nothing_runs(root):
    log_path = root.path / "var/log/mcp-infra/pra-run.log"
    log_path.symlink_to(root.path / "work/elsewhere.log")
    answer = refusal(approve(root))
    assert answer["reason"] == "config_error" and answer["rule"] == "config/log"
    assert not os.path.exists(root.file("a"))
    assert not (root.path / "work/elsewhere.log").exists()
    assert root.syslog()[-1]["refusal"]["rule"] == "config/log"


def test_log_writable_by_others_is_refused(root):
    log_path = root.path / "var/log/mcp-infra/pra-run.log"
    log_path.touch()
    log_path.chmod(0o666)
    assert refusal(approve(root))["rule"] == "config/log"
    assert not os.path.exists(root.file("a"))
