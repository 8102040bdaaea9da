"""The nonce ledger and the done markers under /var/lib/mcp-infra (in a temporary root)."""
from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS.parent / "system" / "lib")]
import pra_support  # noqa: F401 (puts the target library on sys.path)
from mcp_infra_target import pra_state
from mcp_infra_target.refusal import Refusal


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
