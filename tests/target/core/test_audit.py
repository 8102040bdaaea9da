"""The cap on every target audit record (mcp-wrapper, pra-exec, pra-run; syslog and file):
no string over FIELD_MAX_BYTES once escaped, no line over RECORD_MAX_BYTES, and the record
says what was cut (field, full length, SHA-256)."""

import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp_infra_target.core import audit

CAP = audit.RECORD_MAX_BYTES
FIELD = audit.FIELD_MAX_BYTES


def line_of(record):
    line = audit.format_record(record)
    assert len(line) <= CAP and line.isascii() and "\n" not in line
    return line, json.loads(line)


def sha(text):
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def test_a_small_record_is_unchanged():
    record = {"event": "x", "b": [1, None, True], "a": {"é": "\x00\u202e"}}
    assert audit.format_record(record) == json.dumps(record, ensure_ascii=True, sort_keys=True)


@pytest.mark.parametrize("text", [
    pytest.param("a" * 70000, id="ascii"),
    pytest.param("é" * 30000, id="two-byte"),
    pytest.param("\x01" * 30000, id="control"),
    pytest.param("\U0001F600" * 20000, id="astral"),
    pytest.param("\udcff" * 20000, id="lone-surrogate"),
    pytest.param('"\\' * 30000, id="quotes-backslashes"),
])
def test_a_long_field_is_cut_with_a_marker_and_named(text):
    _, record = line_of({"event": "x", "request": text, "decision": "refused"})
    cut = record["request"]
    assert cut.endswith(audit.CUT_MARKER) and text.startswith(cut[:-len(audit.CUT_MARKER)])
    assert len(json.dumps(cut, ensure_ascii=True)) - 2 <= FIELD
    assert len(cut) > FIELD // 13  # cut near the limit, not to nothing
    assert record["decision"] == "refused" and record["event"] == "x"
    assert record["record_cut"]["fields"] == [
        {"field": "request", "chars": len(text), "sha256": sha(text)}]
    assert record["record_cut"]["field_limit"] == FIELD


def test_nested_fields_are_named_by_path():
    _, record = line_of({"batch": [{"id": "a", "command": "x" * 5000}], "argv": ["y" * 5000]})
    names = [f["field"] for f in record["record_cut"]["fields"]]
    assert names == ["batch.0.command", "argv.0"]


def test_many_medium_fields_are_cut_further_until_the_line_fits():
    record = {f"f{i:02d}": "z" * 3000 for i in range(20)}
    _, out = line_of(record)
    assert out["record_cut"]["field_limit"] < FIELD
    assert sorted(k for k in out if k != "record_cut") == sorted(record)
    assert len(out["record_cut"]["fields"]) == audit.CUT_NOTES_MAX
    assert out["record_cut"]["more_fields"] == 20 - audit.CUT_NOTES_MAX


def test_a_record_too_big_even_cut_keeps_its_small_top_level_fields():
    record = {"event": "pra-run", "decision": "refused", "refusal": {"reason": "r"},
              "huge": ["w" * 100] * 5000, "also": {str(i): i for i in range(5000)}}
    _, out = line_of(record)
    assert {k: out[k] for k in ("event", "decision", "refusal")} == {
        "event": "pra-run", "decision": "refused", "refusal": {"reason": "r"}}
    note = out["record_cut"]
    assert note["dropped"] == ["also", "huge"]
    full = json.dumps(record, ensure_ascii=True, sort_keys=True)
    assert note["line_bytes"] == len(full)
    assert note["line_sha256"] == hashlib.sha256(full.encode()).hexdigest()


def test_values_json_cannot_hold_are_capped_too():
    class Loud:
        def __str__(self):
            return "q" * 50000
    _, out = line_of({"thing": Loud()})
    assert out["record_cut"]["fields"][0]["field"] == "thing"


def test_the_syslog_path_is_capped(tmp_path):
    """audit.record (every tool's syslog record) writes the capped line."""
    path = tmp_path / "audit.jsonl"
    audit.record("test", {"request": "é" * 40000}, file_path=str(path))
    line = path.read_text()
    assert line.endswith("\n") and len(line) <= CAP + 1
    assert json.loads(line)["record_cut"]["fields"][0]["field"] == "request"


# long strings cheaply: a short piece repeated
TEXTS = st.tuples(st.text(max_size=6), st.integers(0, 3000)).map(lambda p: p[0] * p[1])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXTS,
    lambda inner: st.lists(inner, max_size=30) | st.dictionaries(st.text(max_size=20), inner,
                                                                 max_size=30),
    max_leaves=100)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=30), JSON_VALUES, max_size=30))
def test_every_record_fits(record):
    line_of(record)
