"""Times in tool results (server/times.py): ISO 8601 in UTC with a `Z`."""

import pytest

from mcp_linux_infra.server.times import iso, isoed, offset_time, systemd


def test_epoch_seconds():
    assert iso(0) == "1970-01-01T00:00:00Z" and iso(None) is None
    assert isoed({"created_at": 86400.5, "at": 60, "count": 3, "not_after": None}) == {
        "created_at": "1970-01-02T00:00:00Z", "at": "1970-01-01T00:01:00Z", "count": 3,
        "not_after": None}


@pytest.mark.parametrize(("written", "expected"), [
    ("Thu 2026-05-07 10:00:01 UTC", "2026-05-07T10:00:01Z"),
    ("Thu 2026-05-07 10:00:01 GMT", "2026-05-07T10:00:01Z"),
    ("Thu 2026-05-07 10:00:01 CEST", "Thu 2026-05-07 10:00:01 CEST"),  # no offset named
    ("", None),
])
def test_systemd(written, expected):
    assert systemd(written) == expected


def test_journal_short_iso():
    assert offset_time("2026-05-07T12:00:01+0200") == "2026-05-07T10:00:01Z"
    assert offset_time("not a time") == "not a time"
