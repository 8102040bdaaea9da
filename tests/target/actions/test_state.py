"""The nonce ledger and the done markers under /var/lib/mcp-infra (in a temporary root)."""
from __future__ import annotations

import json
import os
import stat

import pytest
from mcp_infra_target.actions import state as pra_state
from mcp_infra_target.core.refusal import Refusal


@pytest.fixture
def state(tmp_path):
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return path


def test_nonce_recorded_once(state):
    pra_state.record_nonce(str(state), "n" * 16, {"proposal": "p"})
    entry = state / "nonces" / pra_state.nonce_name("n" * 16)
    assert json.loads(entry.read_text()) == {"proposal": "p"}
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "nonces").stat().st_mode) == 0o700
    with pytest.raises(Refusal) as caught:
        pra_state.record_nonce(str(state), "n" * 16, {"proposal": "other"})
    assert caught.value.reason == "replayed_nonce"
    assert json.loads(entry.read_text()) == {"proposal": "p"}
    pra_state.record_nonce(str(state), "m" * 16, {})


def test_nonce_names_are_hashes():
    assert pra_state.nonce_name("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def test_ledger_refused_when_not_private(state):
    (state / "nonces").mkdir(mode=0o700)
    os.chmod(state / "nonces", 0o770)
    with pytest.raises(Refusal) as caught:
        pra_state.record_nonce(str(state), "n" * 16, {})
    assert caught.value.reason == "config_error"


def test_ledger_refused_when_the_state_dir_is_writable_by_others(state):
    """Otherwise another user could move the ledger away and get an empty one."""
    os.chmod(state, 0o777)
    with pytest.raises(Refusal) as caught:
        pra_state.record_nonce(str(state), "n" * 16, {})
    assert caught.value.reason == "config_error"
    assert not (state / "nonces").exists()


def test_ledger_refused_when_a_symlink(state, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (state / "nonces").symlink_to(elsewhere)
    with pytest.raises(Refusal) as caught:
        pra_state.record_nonce(str(state), "n" * 16, {})
    assert caught.value.reason == "config_error"
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_ledger_refused_when_owned_by_someone_else(state):
    (state / "nonces").mkdir(mode=0o700)
    os.chown(state / "nonces", 65534, 65534)
    with pytest.raises(Refusal) as caught:
        pra_state.record_nonce(str(state), "n" * 16, {})
    assert caught.value.reason == "config_error"


def test_missing_state_dir_is_a_config_error(tmp_path):
    with pytest.raises(Refusal) as caught:
        pra_state.record_nonce(str(tmp_path / "absent"), "n" * 16, {})
    assert caught.value.reason == "config_error"


def test_done_markers(state):
    params = {"unit": "nginx"}
    assert pra_state.last_done(str(state), "restart_service", params) is None
    pra_state.mark_done(str(state), "restart_service", params, {"time": 1234})
    assert pra_state.last_done(str(state), "restart_service", params) == 1234
    assert pra_state.last_done(str(state), "restart_service", {"unit": "cron"}) is None
    assert pra_state.last_done(str(state), "reload_service", params) is None
    pra_state.mark_done(str(state), "restart_service", params, {"time": 99})
    assert pra_state.last_done(str(state), "restart_service", params) == 99
    assert len(list((state / "done").iterdir())) == 1


def test_corrupt_done_marker_counts_as_never_done(state):
    pra_state.mark_done(str(state), "a", {}, {"time": 5})
    marker = next((state / "done").iterdir())
    for content in ("junk", "[]", '{"time": "5"}', '{"time": true}'):
        marker.write_text(content)
        assert pra_state.last_done(str(state), "a", {}) is None


NOW = 1_000_000  # prune_nonces takes the time as an argument


def ledger(state, entries):
    """Ledger entries as pra-run writes them: nonce -> not_after."""
    (state / "nonces").mkdir(mode=0o700, exist_ok=True)
    for nonce, not_after in entries.items():
        pra_state.record_nonce(str(state), nonce, {"not_after": not_after, "proposal": "p"})
    return state / "nonces"


@pytest.mark.parametrize("not_after, skew, kept", [
    pytest.param(NOW - 61, 60, False, id="closed-beyond-skew"),
    pytest.param(NOW - 60, 60, True, id="closed-within-skew"),
    pytest.param(NOW + 3600, 60, True, id="open"),
    pytest.param(NOW - 1, 0, False, id="closed-no-skew"),
    pytest.param(NOW, 0, True, id="last-second"),
])
def test_prune_removes_only_closed_windows(state, not_after, skew, kept):
    directory = ledger(state, {"n" * 16: not_after})
    counts = pra_state.prune_nonces(str(state), NOW, skew)
    assert (directory / pra_state.nonce_name("n" * 16)).exists() == kept
    assert counts == {"scanned": 1, "removed": 0 if kept else 1, "kept": 1 if kept else 0,
                      "unreadable": 0}


@pytest.mark.parametrize("make", [
    pytest.param(lambda p: p.write_text("{}"), id="no-not_after"),
    pytest.param(lambda p: p.write_text('{"not_after": "5"}'), id="string"),
    pytest.param(lambda p: p.write_text('{"not_after": true}'), id="bool"),
    pytest.param(lambda p: p.write_text("junk"), id="not-json"),
    pytest.param(lambda p: p.write_text("[5]"), id="list"),
    pytest.param(lambda p: p.write_text("[" * 100000), id="deep"),
    pytest.param(lambda p: p.write_bytes(b'{"not_after": 5, "x": "\xff"}'), id="not-utf8"),
    pytest.param(lambda p: p.symlink_to("/etc/passwd"), id="symlink"),
    pytest.param(lambda p: p.mkdir(), id="directory"),
    pytest.param(lambda p: os.mkfifo(p), id="fifo"),
])
def test_prune_keeps_what_it_cannot_read(state, make):
    """Every pra-run has written not_after: anything else was not, and is never guessed at."""
    directory = ledger(state, {})
    entry = directory / ("f" * 64)
    make(entry)
    assert pra_state.prune_nonces(str(state), NOW, 0)["unreadable"] == 1
    assert os.path.lexists(entry)


def test_prune_work_is_bounded(state):
    directory = ledger(state, {f"{i:016d}": NOW - 1000 for i in range(10)})
    assert pra_state.prune_nonces(str(state), NOW, 0, scan_max=4)["removed"] == 4
    assert len(list(directory.iterdir())) == 6
    assert pra_state.prune_nonces(str(state), NOW, 0, scan_max=4)["removed"] == 4
    assert pra_state.prune_nonces(str(state), NOW, 0, scan_max=4) == {
        "scanned": 2, "removed": 2, "kept": 0, "unreadable": 0}
    assert list(directory.iterdir()) == []


def test_prune_refuses_a_ledger_not_private_to_root(state):
    directory = ledger(state, {"n" * 16: NOW - 1000})
    os.chmod(directory, 0o770)
    with pytest.raises(Refusal) as caught:
        pra_state.prune_nonces(str(state), NOW, 0)
    assert caught.value.reason == "config_error"
    assert len(list(directory.iterdir())) == 1
