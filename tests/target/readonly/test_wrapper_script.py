"""The real wrapper script, run as sshd would run it (SSH_ORIGINAL_COMMAND), end to end."""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from wrapper_support import (
    REPO,
    WRAPPER,
    audit_records,
    make_root,
    mini_policy,
    refusal_of,
    remove_root,
    run_wrapper,
    unprivileged_user,
    write_policy,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("wrapper-data")
    base.chmod(0o755)
    (base / "hello.txt").write_text("hello from the data dir\n")
    (base / "big.txt").write_text("x" * 5000 + "\n")
    (base / "server.key").write_text("SECRET\n")
    return base


def make_policy(data):
    return mini_policy({
        "uptime": {"executable": ["/usr/bin/uptime", "/bin/uptime"]},
        "id": {"executable": ["/usr/bin/id"], "options": {"-u": None}},
        "cat": {"executable": ["/usr/bin/cat", "/bin/cat"], "output_cap_bytes": 1000,
                "operands": {"rest": {"type": "read_path"}, "min": 1, "max": 4}},
        "sleep": {"executable": ["/usr/bin/sleep", "/bin/sleep"], "timeout_s": 3,
                  "operands": {"items": [{"type": "number", "min": 0, "max": 30}], "min": 1}},
    }, paths={"read_roots": [str(data)], "list_roots": ["/"], "deny": [], "deny_names": ["*.key"]},
        limits={"batch_stdin_timeout_s": 1, "batch_max_commands": 5, "batch_stdin_max_bytes": 4096,
                "batch_output_cap_bytes": 3000})


@pytest.fixture(scope="module")
def root(data):
    root = make_root(make_policy(data))
    yield root
    remove_root(root)


def test_allowed_command_gives_real_output(root):
    done = run_wrapper(root, "uptime")
    assert done.returncode == 0 and b"load average" in done.stdout and done.stderr == b""


def test_file_read_under_root(root, data):
    done = run_wrapper(root, "cat %s" % (data / "hello.txt"))
    assert done.stdout == b"hello from the data dir\n"


@pytest.mark.parametrize("command, reason", [
    ("rm -rf /", "unknown_command"),
    ("/usr/bin/uptime", "command_path_not_allowed"),
    ("uptime -x", "unknown_option"),
    ("uptime; id", "unknown_command"),
    ("cat /etc/passwd", "path_outside_roots"),
    ("cat 'x", "tokenise_error"),
    ("cat a\tb", "control_char"),
    ("uptime \u202e", "unicode_format_char"),
    ("", "empty"),
    ("x" * 5000, "too_long"),
])
def test_refusals_are_one_json_line_and_exit_126(root, command, reason):
    done = run_wrapper(root, command)
    assert refusal_of(done)["reason"] == reason
    assert done.stdout == b""


def test_refusal_names_rule_and_command(root, data):
    refusal = refusal_of(run_wrapper(root, "cat %s" % (data / "server.key")))
    assert refusal == {"reason": "path_denied", "rule": "paths/deny:*.key",
                       "detail": "{!r} is denied".format(str(data / "server.key")), "command": "cat"}


def test_shell_request_and_invalid_utf8(root):
    assert refusal_of(run_wrapper(root, None))["reason"] == "shell_request"
    assert refusal_of(run_wrapper(root, b"uptime \xff"))["reason"] == "invalid_utf8"


def test_timeout_kills_and_exits_124(root):
    start = time.monotonic()
    done = run_wrapper(root, "sleep 20")
    assert done.returncode == 124 and time.monotonic() - start < 8
    assert b"timed out after 3 s" in done.stderr


def test_output_cap_adds_the_marker(root, data):
    done = run_wrapper(root, "cat %s" % (data / "big.txt"))
    assert done.returncode == 0
    assert done.stdout == b"x" * 1000 + b"\n[mcp-wrapper: output truncated at 1000 bytes]\n"


def test_version_policy_and_explain(root):
    policy_bytes = (root / "etc/mcp-infra/readonly.json").read_bytes()
    version = json.loads(run_wrapper(root, "mcp:version").stdout)
    assert version["name"] == "mcp-wrapper"
    assert version["policy_sha256"] == hashlib.sha256(policy_bytes).hexdigest()
    effective = json.loads(run_wrapper(root, "mcp:policy").stdout)
    assert effective["_effective"]["commands"]["sleep"]["executable"].endswith("/sleep")
    assert set(effective["plugins"]["test"]["commands"]) == {"uptime", "id", "cat", "sleep"}
    start = time.monotonic()
    yes = json.loads(run_wrapper(root, "mcp:explain sleep 20").stdout)
    assert time.monotonic() - start < 2
    assert yes["allowed"] and yes["rule"] == "test/sleep" and yes["argv"][1:] == ["20"]
    no = json.loads(run_wrapper(root, "mcp:explain cat /etc/shadow").stdout)
    assert (no["allowed"], no["reason"], no["rule"]) == (False, "path_outside_roots", "paths/read_roots")
    nested = json.loads(run_wrapper(root, "mcp:explain mcp:batch").stdout)
    assert nested["reason"] == "reserved_word_not_allowed_here"


@pytest.mark.parametrize("command, reason", [
    ("mcp:nope", "unknown_reserved_word"), ("mcp:version now", "reserved_word_args"),
    ("mcp:trace=bad/id uptime", "bad_trace_id"), ("mcp:trace=abc", "empty"),
])
def test_reserved_word_misuse(root, command, reason):
    assert refusal_of(run_wrapper(root, command))["reason"] == reason


def test_one_audit_record_per_request_with_trace(root):
    before = len(audit_records(root))
    run_wrapper(root, "mcp:trace=t-1.x uptime", extra_env={"SSH_USER_AUTH": "/nonexistent"})
    run_wrapper(root, "cat /etc/shadow")
    records = audit_records(root)[before:]
    assert len(records) == 2
    assert records[0]["trace"] == "t-1.x" and records[0]["decision"] == "allowed"
    assert records[0]["rule"] == "test/uptime" and records[0]["exit"] == 0
    assert records[1]["decision"] == "refused" and records[1]["exit"] == 126
    assert records[1]["request"] == "cat /etc/shadow"


@pytest.mark.parametrize("command", [
    pytest.param("é" * 60000, id="printable-non-ascii"),
    pytest.param(b"\x01" * 60000, id="control"),
    pytest.param(b"\xff" * 60000, id="invalid-utf8"),
])
def test_audit_record_of_an_oversized_request_is_capped(root, command):
    """The screen refuses it; its record holds the start of it, cut, with the full length
    and digest, and the line stays within the record cap."""
    run_wrapper(root, command)
    path = root / "var/log/mcp-wrapper-audit.jsonl"
    line = path.read_text().splitlines()[-1]
    assert len(line) <= 16384
    record = json.loads(line)
    assert record["decision"] == "refused" and record["exit"] == 126
    assert record["request"].endswith("...[cut]")
    assert [f["field"] for f in record["record_cut"]["fields"]] == ["request"]


def batch(root, document, **kwargs):
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    return run_wrapper(root, "mcp:batch", stdin=data, **kwargs)


def test_batch_runs_concurrently_and_reports_each(root, data):
    start = time.monotonic()
    done = batch(root, {"commands": [
        {"id": "a", "command": "sleep 1"}, {"id": "b", "command": "sleep 1"},
        {"id": "c", "command": "sleep 1"}, {"id": "d", "command": "cat /etc/shadow"},
        {"id": "e", "command": "sleep 10"}]})
    elapsed = time.monotonic() - start
    assert done.returncode == 0
    results = {r["id"]: r for r in json.loads(done.stdout)["results"]}
    assert [results[k]["status"] for k in "abcde"] == ["ok", "ok", "ok", "refused", "timeout"]
    assert results["d"]["refusal"]["reason"] == "path_outside_roots"
    assert results["e"]["exit_code"] == 124
    assert elapsed < 6


def test_batch_output_share_and_nested_reserved(root, data):
    done = batch(root, {"commands": [{"command": "cat %s" % (data / "big.txt")},
                                     {"command": "mcp:batch"}, {"command": "mcp:trace=x uptime"}]})
    first, second, third = json.loads(done.stdout)["results"]
    assert first["truncated"] and len(first["stdout"]) == 1000
    assert second["refusal"]["reason"] == third["refusal"]["reason"] == "reserved_word_not_allowed_here"


@pytest.mark.parametrize("document, reason", [
    (b"not json", "batch_bad_json"),
    ({"commands": []}, "batch_bad_shape"),
    ({"commands": [{"command": "uptime", "extra": 1}]}, "batch_bad_shape"),
    ({"commands": [{"id": "a b", "command": "uptime"}]}, "batch_bad_shape"),
    ({"commands": [{"command": "uptime"}] * 6}, "batch_too_many"),
    (b"x" * 5000, "batch_too_large"),
])
def test_batch_refusals(root, document, reason):
    assert refusal_of(batch(root, document))["reason"] == reason


def test_deeply_nested_batch_is_a_json_refusal(data):
    """Nesting deeper than the interpreter's stack is bad JSON, not an internal error."""
    root = make_root(mini_policy({"uptime": {"executable": ["/usr/bin/uptime", "/bin/uptime"]}},
                                 limits={"batch_stdin_max_bytes": 262144}))
    try:
        for document in (b"[" * 100000, b'{"commands": ' + b"[" * 100000):
            assert refusal_of(batch(root, document))["reason"] == "batch_bad_json"
        assert audit_records(root)[-1]["reason"] == "batch_bad_json"
    finally:
        remove_root(root)


def test_batch_stdin_left_open_is_refused_in_time(root):
    env = {"PATH": "/usr/bin:/bin", "MCP_INFRA_TEST_ROOT": str(root), "SSH_ORIGINAL_COMMAND": "mcp:batch"}
    start = time.monotonic()
    process = subprocess.Popen([str(WRAPPER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    process.stdin.write(b'{"commands": [')
    process.stdin.flush()
    assert process.wait(timeout=10) == 126
    assert json.loads(process.stderr.read())["mcp_refusal"]["reason"] == "batch_stdin_timeout"
    assert time.monotonic() - start < 5
    process.stdin.close()
    process.stdout.close()
    process.stderr.close()


def test_override_is_ignored_inside_an_ssh_session(root):
    before = len(audit_records(root))
    done = run_wrapper(root, "mcp:version", extra_env={"SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 22"})
    own = hashlib.sha256((root / "etc/mcp-infra/readonly.json").read_bytes()).hexdigest()
    assert done.returncode == 126 or json.loads(done.stdout)["policy_sha256"] != own
    assert len(audit_records(root)) == before
    done = run_wrapper(root, "mcp:version", extra_env={"SSH_CLIENT": "10.0.0.1 5000 22"})
    assert done.returncode == 126 or json.loads(done.stdout)["policy_sha256"] != own


def test_untrusted_library_or_policy_is_refused(data):
    bad = make_root(make_policy(data))
    (REPO / "build").mkdir(exist_ok=True)
    trusted_dir = Path(tempfile.mkdtemp(prefix="wrapper-lib-", dir=REPO / "build"))
    trusted_dir.chmod(0o755)
    try:
        lib_copy = trusted_dir / "lib"
        shutil.copytree(os.path.realpath(bad / "usr/local/lib/mcp-infra"), lib_copy,
                        ignore=shutil.ignore_patterns("__pycache__"))
        (bad / "usr/local/lib/mcp-infra").unlink()
        (bad / "usr/local/lib/mcp-infra").symlink_to(lib_copy)
        os.chmod(lib_copy / "mcp_infra_target", 0o777)
        refusal = refusal_of(run_wrapper(bad, "uptime"))
        assert (refusal["reason"], refusal["rule"]) == ("library_untrusted", "bootstrap/library")
        os.chmod(lib_copy / "mcp_infra_target", 0o755)
        assert run_wrapper(bad, "uptime").returncode == 0
        os.chmod(bad / "etc/mcp-infra/readonly.json", 0o666)
        assert refusal_of(run_wrapper(bad, "uptime"))["reason"] == "policy_invalid"
        os.chmod(bad / "etc/mcp-infra/readonly.json", 0o644)
        (bad / "etc/mcp-infra/readonly.json").write_text("{")
        assert refusal_of(run_wrapper(bad, "uptime"))["reason"] == "policy_invalid"
        write_policy(bad, dict(make_policy(data), surprise=1))
        assert refusal_of(run_wrapper(bad, "uptime"))["reason"] == "policy_invalid"
        (bad / "usr/local/lib/mcp-infra").unlink()
        (bad / "usr/local/lib/mcp-infra").symlink_to("/tmp")
        assert "/tmp" in refusal_of(run_wrapper(bad, "uptime"))["detail"]
    finally:
        remove_root(bad)
        shutil.rmtree(trusted_dir, ignore_errors=True)


@pytest.mark.skipif(unprivileged_user() is None, reason="needs root to switch to nobody")
def test_runs_as_an_unprivileged_user(root):
    done = run_wrapper(root, "id -u", as_user=unprivileged_user())
    assert done.returncode == 0 and int(done.stdout) == unprivileged_user()[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: root-owned sticky directories")
def test_library_trust_accepts_root_sticky_ancestors_but_never_a_writable_library_dir():
    """A clone under /tmp must work (only an entry's owner may rename it in a sticky dir),
    but the library directory itself is on sys.path and must not be writable by others."""
    import shutil

    from wrapper_support import LIB, make_root, remove_root
    root = make_root()
    try:
        library = root / "usr/local/lib/mcp-infra"
        library.unlink()
        shutil.copytree(LIB, library, ignore=shutil.ignore_patterns("__pycache__"))
        (root / "usr/local").chmod(0o1777)  # a root-owned sticky ancestor, like /tmp
        assert run_wrapper(root, "uptime").returncode == 0
        (root / "usr/local").chmod(0o777)  # writable without the sticky bit: anyone may swap
        assert refusal_of(run_wrapper(root, "uptime"))["reason"] == "library_untrusted"
        (root / "usr/local").chmod(0o755)
        library.chmod(0o1777)  # sticky is no excuse for the directory on sys.path
        assert refusal_of(run_wrapper(root, "uptime"))["reason"] == "library_untrusted"
    finally:
        remove_root(root)
