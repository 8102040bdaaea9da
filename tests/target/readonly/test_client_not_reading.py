"""A client that stops reading cannot keep the wrapper or its command alive past the
request's deadline: on its own channel, in a batch and in a session, the real wrapper script
with its stdout a pipe nobody reads ends the request at the deadline, leaves no process
behind, and audits that the client was not reading."""

import base64
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from wrapper_support import WRAPPER, audit_records, make_root, mini_policy, remove_root

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root: the command must be a root-owned file")

MiB = 1024 * 1024


def processes_with(token: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if token.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.fixture
def flood():
    """A root-owned command that writes without end, its processes marked by a token."""
    base = Path(tempfile.mkdtemp(prefix="mcp-flood-"))
    base.chmod(0o755)
    token = "mcp-flood-" + secrets.token_hex(8)
    script = base / "flood"
    script.write_text(f"#!/bin/sh\nexec /usr/bin/yes {token}\n")
    script.chmod(0o755)
    root = make_root(mini_policy(
        {"flood": {"executable": [str(script)], "timeout_s": 2, "output_cap_bytes": 4 * MiB}},
        limits={"batch_timeout_s": 2, "batch_stdin_timeout_s": 1,
                "batch_output_cap_bytes": 4 * MiB}))
    yield root, token
    for pid in processes_with(token):  # only if the wrapper failed to stop it
        os.kill(pid, 9)
    remove_root(root)
    shutil.rmtree(base)


def session_frame() -> bytes:
    return json.dumps({"id": "1", "command": "flood"}).encode() + b"\n"


def batch_document() -> bytes:
    return json.dumps({"commands": [{"id": "a", "command": "flood"}]}).encode()


@pytest.mark.parametrize("command, stdin, exit_code", [
    pytest.param("flood", None, 141, id="own-channel"),
    pytest.param("mcp:batch", batch_document(), 141, id="batch"),
    pytest.param("mcp:session", session_frame(), 0, id="session"),
])
def test_a_client_that_never_reads_is_gone_at_the_deadline(flood, command, stdin, exit_code):
    root, token = flood
    env = {"PATH": "/usr/bin:/bin", "MCP_INFRA_TEST_ROOT": str(root), "USER": "tester",
           "SSH_ORIGINAL_COMMAND": command}
    reader, writer = os.pipe()  # the client's end of stdout: never read
    try:
        proc = subprocess.Popen([str(WRAPPER)], stdin=subprocess.PIPE, stdout=writer,
                                stderr=subprocess.DEVNULL, env=env, cwd="/")
        os.close(writer)
        if stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.flush()
        if command != "mcp:session":  # a session's client keeps its end open
            proc.stdin.close()
        try:
            code = proc.wait(timeout=60)  # the deadline is 3 s; this bound is only a backstop
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("the wrapper was still running 60 s after a 3 s deadline")
        assert code == exit_code
        assert processes_with(token) == []
    finally:
        os.close(reader)
        if not proc.stdin.closed:
            proc.stdin.close()
    record = audit_records(root)[-1]
    assert record["client_gone"] == "not_reading", record
    if command == "mcp:session":
        assert record["session"] == {"requests": 1, "ended": "client_gone"}


def test_a_client_that_reads_gets_its_whole_answer(flood):
    """The deadline bounds waiting, not reading: a client that reads gets its whole answer."""
    root, _ = flood
    env = {"PATH": "/usr/bin:/bin", "MCP_INFRA_TEST_ROOT": str(root), "USER": "tester",
           "SSH_ORIGINAL_COMMAND": "mcp:session"}
    proc = subprocess.Popen([str(WRAPPER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, cwd="/")
    try:
        assert "mcp_session" in json.loads(proc.stdout.readline())
        proc.stdin.write(session_frame())
        proc.stdin.flush()
        answer = json.loads(proc.stdout.readline())
        out = base64.b64decode(answer["stdout"])
        assert answer["id"] == "1" and len(out) > 4 * MiB - 100  # the cap, then the marker
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
        proc.stdout.close()
