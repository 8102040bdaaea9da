"""`mcp:session` on the real wrapper script: many requests over one channel, each handled
exactly as on its own channel; every malformed frame ends the session with a refusal."""

import base64
import json
import os
import time

import pytest
from wrapper_support import (
    audit_records,
    make_root,
    mini_policy,
    refusal_of,
    remove_root,
    run_wrapper,
    unprivileged_user,
    wrapper_process,
    write_policy,
)


def policy(**limits):
    return mini_policy({
        "uptime": {"executable": ["/usr/bin/uptime", "/bin/uptime"]},
        "id": {"executable": ["/usr/bin/id"], "options": {"-u": None}},
        "cat": {"executable": ["/usr/bin/cat", "/bin/cat"],
                "operands": {"rest": {"type": "read_path"}, "min": 1, "max": 4}},
        "sleep": {"executable": ["/usr/bin/sleep", "/bin/sleep"], "timeout_s": 1,
                  "operands": {"items": [{"type": "number", "min": 0, "max": 30}], "min": 1}},
    }, limits=limits)


@pytest.fixture
def root():
    root = make_root(policy())
    yield root
    remove_root(root)


class Session:
    """The wrapper in session mode as a subprocess, spoken to frame by frame."""

    def __init__(self, root, as_user=None):
        self.proc = wrapper_process(root, "mcp:session", as_user)
        self.hello = self.read()

    def read(self):
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def send(self, data: bytes):
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:  # the wrapper stopped reading a frame it refused
            pass

    def ask(self, command, ident="1", stdin=None):
        frame = {"id": ident, "command": command}
        if stdin is not None:
            frame["stdin"] = base64.b64encode(stdin).decode()
        self.send(json.dumps(frame).encode() + b"\n")
        return answer(self.read())

    def close(self):
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        code = self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code


def answer(frame):
    return {"id": frame["id"], "exit": frame["exit"],
            "stdout": base64.b64decode(frame["stdout"]), "stderr": base64.b64decode(frame["stderr"])}


def refusal(answer_):
    assert answer_["exit"] == 126, answer_
    lines = answer_["stderr"].decode().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])["mcp_refusal"]


def test_requests_answer_exactly_like_their_own_channels(root):
    session = Session(root)
    assert set(session.hello["mcp_session"]) == {"version", "idle_s", "max_requests", "max_s",
                                                 "line_max_bytes"}
    for command in ("uptime", "id -u", "cat /etc/hostname", "rm -rf /", "uptime; id",
                    "mcp:version", "mcp:explain id -u", "sleep 5"):
        alone = run_wrapper(root, command)
        got = session.ask(command, ident="r-" + str(len(command)))
        assert got["id"] == "r-" + str(len(command))
        assert got["exit"] == alone.returncode, command
        if command not in ("uptime", "mcp:explain id -u"):  # uptime's clock moves
            assert (got["stdout"], got["stderr"]) == (alone.stdout, alone.stderr), command
    assert session.close() == 0


def test_batch_inside_a_session_takes_its_document_from_the_frame(root):
    session = Session(root)
    document = json.dumps({"commands": [{"id": "u", "command": "id -u"},
                                        {"id": "x", "command": "cat /etc/shadow"}]}).encode()
    got = session.ask("mcp:batch", stdin=document)
    results = {r["id"]: r for r in json.loads(got["stdout"])["results"]}
    assert got["exit"] == 0 and results["u"]["status"] == "ok"
    assert results["x"]["status"] == "refused"
    assert refusal(session.ask("mcp:batch", stdin=b"{"))["reason"] == "batch_bad_json"
    assert refusal(session.ask("mcp:batch"))["reason"] == "batch_bad_json"  # no document
    too_big = session.ask("mcp:batch", stdin=b" " * 70000)  # the policy's batch_stdin_max_bytes
    assert refusal(too_big)["reason"] == "batch_too_large"
    assert session.ask("id -u")["exit"] == 0  # judged as on a channel; the session goes on
    assert session.close() == 0


@pytest.mark.parametrize("command, reason", [
    ("mcp:session", "reserved_word_not_allowed_here"),
    ("mcp:trace=t1 mcp:session", "reserved_word_not_allowed_here"),
    ("id\t-u", "control_char"),
    ("id\u202e -u", "unicode_format_char"),
    ("", "empty"),
    ("sh -c id", "unknown_command"),
])
def test_refusals_inside_a_session_keep_it_open(root, command, reason):
    session = Session(root)
    assert refusal(session.ask(command))["reason"] == reason
    assert session.ask("id -u")["exit"] == 0  # still serving
    assert session.close() == 0


@pytest.mark.parametrize("frame, reason", [
    (b"not json\n", "session_bad_frame"),
    (b"[1, 2]\n", "session_bad_frame"),
    (b'{"command": "id"}\n', "session_bad_frame"),
    (b'{"id": "a b", "command": "id"}\n', "session_bad_frame"),
    (b'{"id": "1", "command": ["id"]}\n', "session_bad_frame"),
    (b'{"id": "1", "command": "id", "env": {"LD_PRELOAD": "/x"}}\n', "session_bad_frame"),
    (b'{"id": "1", "command": "id", "stdin": "%%%"}\n', "session_bad_frame"),
    (b'{"id": "1", "command": "\\ud800"}\n', "invalid_utf8"),
    (b'{"id": "1", "command": "id\\u0000 -u"}\n', "control_char"),
    (b'\xff\xfe\n', "session_bad_frame"),
    (b'{"id": "1", "command": "' + b"a" * 200000 + b'"}\n', "session_line_too_long"),
    pytest.param(b"[" * 100000 + b"\n", "session_bad_frame", id="nested-100000-deep"),
    pytest.param(b'{"id": "1", "command": "id", "stdin": ' + b"[" * 100000 + b"\n",
                 "session_bad_frame", id="nested-inside-a-frame"),
])
def test_a_malformed_frame_is_refused_and_ends_the_session(root, frame, reason):
    session = Session(root)
    session.send(frame)
    got = answer(session.read())
    if reason == "control_char":  # a well-formed frame, a refused request
        assert refusal(got)["reason"] == reason
        assert session.ask("id -u")["exit"] == 0
    else:
        assert got["id"] is None and refusal(got)["reason"] == reason
        assert session.read() is None  # nothing more: the session is over
    session.close()
    ended = [r for r in audit_records(root) if r.get("rule") == "reserved/session"]
    if reason != "control_char":
        assert ended[-1]["session"]["ended"] == "bad_frame:" + reason


def test_a_frame_never_finished_is_refused_at_end_of_input(root):
    session = Session(root)
    session.send(b'{"id": "1", "command": "id -u"')
    session.proc.stdin.close()
    assert refusal(answer(session.read()))["reason"] == "session_bad_frame"
    assert session.proc.wait(timeout=30) == 0


def test_limits_end_a_session(tmp_path):
    root = make_root(policy(session_idle_s=1, session_max_requests=2))
    try:
        session = Session(root)
        assert session.hello["mcp_session"]["idle_s"] == 1
        assert session.ask("id -u")["exit"] == 0 and session.ask("id -u")["exit"] == 0
        assert session.read() is None  # max_requests reached: the wrapper has left
        session.close()
        session = Session(root)
        began = time.monotonic()
        assert session.read() is None  # idle: no request within a second
        assert time.monotonic() - began < 10
        session.close()
        ends = [r["session"]["ended"] for r in audit_records(root)
                if r.get("rule") == "reserved/session"]
        assert ends == ["max_requests", "idle"]
    finally:
        remove_root(root)


def test_each_request_has_its_own_audit_record_and_trace(root):
    session = Session(root)
    session.ask("mcp:trace=abc id -u", ident="1")
    session.ask("cat /etc/shadow", ident="2")
    session.close()
    records = audit_records(root)
    inner = [r for r in records if r.get("rule") != "reserved/session"]
    outer = [r for r in records if r.get("rule") == "reserved/session"]
    assert [(r["trace"], r["decision"]) for r in inner] == [("abc", "allowed"), (None, "refused")]
    assert len(outer) == 1 and outer[0]["session"] == {"requests": 2, "ended": "end_of_input"}
    assert {r["session_id"] for r in inner} == {outer[0]["session_id"]}


def test_a_policy_change_reaches_a_running_session(root):
    session = Session(root)
    assert session.ask("uptime")["exit"] == 0
    document = policy()
    del document["plugins"]["test"]["commands"]["uptime"]
    write_policy(root, document)
    assert refusal(session.ask("uptime"))["reason"] == "unknown_command"
    os.chmod(root / "etc/mcp-infra/readonly.json", 0o666)  # now anyone could write it
    assert refusal(session.ask("id -u"))["reason"] == "policy_invalid"
    session.close()


def test_a_session_runs_as_the_unprivileged_caller(root):
    ids = unprivileged_user()
    if ids is None:
        pytest.skip("already unprivileged")
    session = Session(root, as_user=ids)
    assert session.ask("id -u")["stdout"] == f"{ids[0]}\n".encode()
    assert session.close() == 0


def test_a_client_that_stops_reading_ends_the_session(root):
    session = Session(root)
    session.proc.stdout.close()
    session.send(json.dumps({"id": "1", "command": "id -u"}).encode() + b"\n")
    assert session.proc.wait(timeout=30) == 0
    session.proc.stdin.close()
    ended = [r for r in audit_records(root) if r.get("rule") == "reserved/session"]
    assert ended[-1]["session"]["ended"] == "client_gone"


def test_session_takes_no_arguments(root):
    assert refusal_of(run_wrapper(root, "mcp:session now"))["reason"] == "reserved_word_args"
