"""parsers.journal_json: `journalctl -o json` as journalctl really writes it (byte arrays,
repeated fields, nulls, fields missing) and as the target's cap may cut it."""

import json

import pytest
from mcp_support import OUTPUTS

from mcp_linux_infra.readonly.commands import JOURNAL_FIELDS
from mcp_linux_infra.server.parsers import journal_json

ERRORS = ("journalctl --no-pager -p err -n200 --since -1h -o json --output-fields "
          + ",".join(JOURNAL_FIELDS) + " -q")
AT = "1796440859706767"  # __REALTIME_TIMESTAMP of 2026-12-05T03:20:59.706767Z
AT_ISO = "2026-12-05T03:20:59Z"


def line(**fields) -> str:
    return json.dumps({"__REALTIME_TIMESTAMP": AT, "__CURSOR": "s=1;i=2", "_BOOT_ID": "b",
                       "PRIORITY": "3", "SYSLOG_IDENTIFIER": "sshd",
                       "_SYSTEMD_UNIT": "ssh.service", "MESSAGE": "hello", **fields})


def row(**fields) -> dict:
    return {"time": AT_ISO, "unit": "ssh.service", "identifier": "sshd", "priority": 3,
            "message": "hello", **fields}


CASES = [
    pytest.param(line(), row(), id="plain"),
    pytest.param(line(UNIT="lab-broken.service", _SYSTEMD_UNIT="init.scope"),
                 row(unit="lab-broken.service"), id="unit-it-is-about-first"),
    pytest.param(line(MESSAGE=[104, 105, 255]), row(message="hi\ufffd"), id="bytes-not-utf8"),
    pytest.param(line(MESSAGE=[27, 91, 51, 49, 109, 120]), row(message="\x1b[31mx"),
                 id="bytes-with-escape"),
    pytest.param(line(MESSAGE=["first", "second"]), row(message="first"), id="repeated-field"),
    pytest.param(line(MESSAGE=[[104, 105], [111]]), row(message="hi"), id="repeated-bytes"),
    pytest.param(line(MESSAGE=None), row(message=None), id="null-over-limit"),
    pytest.param(line(MESSAGE=[]), row(message=None), id="empty-array"),
    pytest.param(line(MESSAGE=[104, 256]), row(message=None), id="not-a-byte"),
    pytest.param(line(MESSAGE=[True, 1]), row(message=None), id="booleans-are-not-bytes"),
    pytest.param(line(MESSAGE={"a": 1}), row(message=None), id="object"),
    pytest.param(line(PRIORITY="9"), row(priority=None), id="priority-out-of-range"),
    pytest.param(line(PRIORITY=3), row(priority=None), id="priority-not-a-string"),
    pytest.param(line(PRIORITY="0"), row(priority=0), id="priority-emerg"),
    pytest.param(line(__REALTIME_TIMESTAMP="soon"), row(time=None), id="time-not-digits"),
    pytest.param(line(__REALTIME_TIMESTAMP="9" * 30), row(time=None), id="time-overflow"),
    pytest.param(json.dumps({"MESSAGE": "bare"}),
                 {"time": None, "unit": None, "identifier": None, "priority": None,
                  "message": "bare"}, id="fields-missing"),
    pytest.param(line(MESSAGE="Ünïcode ✓ 42 – 🙂"), row(message="Ünïcode ✓ 42 – 🙂"),
                 id="unicode"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_one_entry(text, expected):
    assert journal_json(text + "\n") == [expected]


@pytest.mark.parametrize("text", [
    pytest.param("", id="empty"),
    pytest.param("-- No entries --", id="not-json"),
    pytest.param("[1, 2]", id="array"),
    pytest.param("42", id="number"),
    pytest.param("null", id="null"),
    pytest.param(line()[:-20], id="cut-by-the-cap"),
])
def test_what_is_not_an_entry_is_skipped(text):
    assert journal_json(f"{line()}\n{text}\n{line(MESSAGE='after')}") == [
        row(), row(message="after")]


def test_the_captured_journal_reads_whole():
    captured = json.loads(OUTPUTS.read_text())["outputs"][ERRORS]["stdout"]
    rows = journal_json(captured)
    assert len(rows) == len(captured.splitlines()) == 61
    assert all(r["time"] and r["identifier"] and r["message"] and r["priority"] in (2, 3)
               for r in rows)
    assert sum(r["unit"] is None for r in rows) == 8  # logger lines journald did not attribute
    assert rows == sorted(rows, key=lambda r: r["time"])
