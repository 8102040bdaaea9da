"""The supervised runner: timeout, output cap, process groups, environment, file limit."""

import time

from mcp_infra_target.core import runner

ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def run(argv, timeout=5.0, cap=1 << 20, env=ENV, scratch_bytes=0):
    chunks = {"stdout": b"", "stderr": b""}

    def sink(stream, chunk):
        chunks[stream] += chunk
    outcome = runner.run(argv, env, timeout, sink, cap_bytes=cap, kill_grace_s=0.5,
                         limits={"fsize": scratch_bytes})
    return outcome, chunks["stdout"], chunks["stderr"]


def _running(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def alive(pid, settle_s=1.0):
    """Still running (not gone, not a zombie) once a pending SIGKILL had time to land."""
    deadline = time.monotonic() + settle_s
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return _running(pid)


def test_output_and_exit_code():
    outcome, out, err = run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (outcome.exit_code, out, err) == (3, b"out\n", b"err\n")
    assert not outcome.timed_out and not outcome.truncated


def test_fixed_environment_stdin_and_cwd():
    _outcome, out, _ = run(["/bin/sh", "-c", "env; pwd; cat; echo end"], env={"PATH": "/bin", "X": "1"})
    lines = out.decode().splitlines()
    assert "X=1" in lines and "/" in lines and lines[-1] == "end"
    assert not any(line.startswith(("LD_", "MCP_", "SSH_")) for line in lines)


def test_timeout_kills_the_whole_group_and_reports_124():
    start = time.monotonic()
    outcome, out, _ = run(["/bin/sh", "-c", "sleep 60 & echo $!; sleep 60"], timeout=1)
    assert outcome.timed_out and outcome.exit_code == 124
    assert time.monotonic() - start < 4
    assert not alive(int(out))


def test_term_ignoring_child_is_killed_after_grace():
    start = time.monotonic()
    outcome, _, _ = run(["/bin/sh", "-c", "trap '' TERM; sleep 60"], timeout=0.5)
    assert outcome.exit_code == 124 and time.monotonic() - start < 3


def test_output_cap_truncates_and_stops_the_producer():
    start = time.monotonic()
    outcome, out, _ = run(["/bin/sh", "-c", "while :; do echo yyyyyyyyyyyyyyyy; done"], cap=1000)
    assert outcome.truncated and len(out) == 1000 and outcome.output_bytes == 1000
    assert outcome.exit_code == 0 and time.monotonic() - start < 3


def test_cap_counts_both_streams():
    outcome, out, err = run(["/bin/sh", "-c", "head -c 600 /dev/zero >&2; head -c 600 /dev/zero"], cap=1000)
    assert outcome.truncated and len(out) + len(err) == 1000


def test_background_leftovers_are_killed_when_the_leader_exits():
    outcome, out, _ = run(["/bin/sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"])
    assert outcome.exit_code == 0
    assert not alive(int(out))


def test_children_cannot_grow_files(tmp_path):
    target = tmp_path / "written"
    outcome, _, _ = run(["/bin/sh", "-c", f"echo data > {target}"])
    assert outcome.exit_code == 128 + 25  # SIGXFSZ
    assert not target.exists() or target.stat().st_size == 0
    with open(tmp_path / "parent-still-writes", "w") as handle:
        handle.write("ok")


def fsize_limits(out: bytes) -> list[str]:
    line = next(x for x in out.decode().splitlines() if x.startswith("Max file size"))
    return line.split()[3:5]


def test_the_file_size_limit_is_hard_too():
    """Soft and hard alike, so the command cannot raise it (it is set before it runs)."""
    for scratch, expected in ((0, ["0", "0"]), (1 << 20, ["1048576", "1048576"])):
        outcome, out, _ = run(["/bin/cat", "/proc/self/limits"], scratch_bytes=scratch)
        assert outcome.exit_code == 0 and fsize_limits(out) == expected


def test_signal_exit_code_and_missing_binary():
    outcome, _, _ = run(["/bin/sh", "-c", "kill -9 $$"])
    assert outcome.exit_code == 128 + 9
    outcome, _, _ = run(["/nonexistent/binary"])
    assert outcome.exit_code == 127 and outcome.error
