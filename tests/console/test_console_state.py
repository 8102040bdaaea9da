"""The console's small state: rate-limit buckets, one-use challenges, sessions stored hashed
and expiring (clocks injected, nothing waits)."""

import sqlite3

from mcp_linux_infra.console.security import RateLimiter
from mcp_linux_infra.console.sessions import Challenges, Sessions


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_bucket_refills_at_its_rate_and_per_client():
    clock = Clock()
    limiter = RateLimiter({"login": (2, 60.0)}, clock=clock)
    assert [limiter.allow("login", "a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("login", "b")
    clock.now += 1.0  # 60 a minute: one more
    assert [limiter.allow("login", "a") for _ in range(2)] == [True, False]


def test_a_challenge_is_taken_once_for_its_purpose_and_subject_before_it_expires():
    clock = Clock()
    challenges = Challenges(seconds=300, clock=clock)
    first = challenges.issue("enroll", "token-1")
    assert not challenges.take(first, "enroll", "token-2")
    second = challenges.issue("enroll", "token-1")
    assert not challenges.take(second, "login")
    third = challenges.issue("login")
    assert challenges.take(third, "login") and not challenges.take(third, "login")
    late = challenges.issue("login")
    clock.now += 301
    assert not challenges.take(late, "login")


def test_sessions_are_stored_hashed_and_expire(tmp_path, monkeypatch):
    import mcp_linux_infra.console.sessions as module

    sessions = Sessions(tmp_path / "approvals.sqlite3")
    session_id, session = sessions.create("alice", 60)
    assert sessions.get(session_id) == session and sessions.get("other") is None
    with sqlite3.connect(tmp_path / "approvals.sqlite3") as db:
        assert session_id not in "\n".join(db.iterdump())
    assert session.csrf_ok(session.csrf) and not session.csrf_ok(None)
    assert not session.csrf_ok(session.csrf + "x")
    now = module.time.time()
    monkeypatch.setattr(module.time, "time", lambda: now + 61)
    assert sessions.get(session_id) is None
    sessions.close()
