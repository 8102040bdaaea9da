"""Descriptors handed to a command, and their names rewritten back in its output."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp_infra_target.core import runner
from mcp_infra_target.readonly import handover
from mcp_infra_target.readonly.handover import Rename

NAMES = {"/dev/fd/3": "/var/log/syslog", "/dev/fd/31/.": "/run/lock/d",
         "/dev/fd/4/x.log": "/srv/app/x.log"}


def streamed(names, chunks):
    rename = Rename(names)
    return b"".join(rename.feed(chunk) for chunk in chunks) + rename.flush()


@pytest.mark.parametrize("text, expected", [
    pytest.param(b"==> /dev/fd/3 <==\n", b"==> /var/log/syslog <==\n", id="head-header"),
    pytest.param(b"/dev/fd/3:12:match\n", b"/var/log/syslog:12:match\n", id="grep-H"),
    pytest.param(b"/dev/fd/31/./a/b\n", b"/run/lock/d/a/b\n", id="find-below-a-dir"),
    pytest.param(b"4\t/dev/fd/31/.\n", b"4\t/run/lock/d\n", id="du-total"),
    pytest.param(b"  File: /dev/fd/4/x.log\n", b"  File: /srv/app/x.log\n", id="stat"),
    pytest.param(b"/dev/fd/35 /dev/fd/3x /dev/fd/31/.. /dev/fd/4/x.logs",
                 b"/dev/fd/35 /dev/fd/3x /dev/fd/31/.. /dev/fd/4/x.logs", id="longer-names-kept"),
    pytest.param(b"/dev/fd/3/dev/fd/3", b"/var/log/syslog/var/log/syslog", id="adjacent"),
])
def test_only_the_exact_spellings_are_rewritten(text, expected):
    assert streamed(NAMES, [text]) == expected


@given(st.lists(st.sampled_from([b"/dev/fd/3", b"/dev/fd/31/.", b"/dev/fd/4/x.log", b"/dev/",
                                 b"fd/3", b"1", b"x", b"/", b".", b"\n", b" "]), max_size=40),
       st.lists(st.integers(0, 60), max_size=8))
def test_chunk_boundaries_never_change_the_result(pieces, cuts):
    data = b"".join(pieces)
    positions = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0] + positions, positions + [len(data)])]
    assert streamed(NAMES, chunks) == streamed(NAMES, [data])


def test_a_command_gets_the_descriptors_and_its_output_the_names(tmp_path):
    (tmp_path / "f").write_text("one\ntwo\n")
    fd = os.open(tmp_path / "f", os.O_PATH | os.O_CLOEXEC)
    passed = handover.Passed(f"/dev/fd/{fd}", (fd,), "/as/typed", str(tmp_path / "f"))
    held = handover.Held()
    held.passed.append(passed)
    chunks = {"stdout": b"", "stderr": b""}

    def sink(stream, chunk):
        chunks[stream] += chunk
    outcome = runner.run(["/usr/bin/head", "-v", passed, "/nonexistent"], {"PATH": "/usr/bin"},
                         5, sink, cap_bytes=1 << 20, kill_grace_s=0.5, limits={"fsize": 0},
                         pass_fds=held.fds(), filters=held.filters())
    held.close()
    assert chunks["stdout"] == b"==> /as/typed <==\none\ntwo\n"
    assert b"/nonexistent" in chunks["stderr"] and outcome.exit_code == 1
    assert passed.fds == ()


def test_the_cap_counts_the_rewritten_output(tmp_path):
    """A file full of the descriptor's spelling cannot multiply the output past the cap."""
    (tmp_path / "f").touch()
    fd = os.open(tmp_path / "f", os.O_PATH | os.O_CLOEXEC)
    (tmp_path / "f").write_bytes(b"/dev/fd/%d\n" % fd * 10000)
    held = handover.Held()
    held.passed.append(handover.Passed(f"/dev/fd/{fd}", (fd,), "/" + "n" * 4000, "/x"))
    got = []
    outcome = runner.run(["/usr/bin/cat", f"/dev/fd/{fd}"], {"PATH": "/usr/bin"}, 5,
                         lambda stream, chunk: got.append(chunk), cap_bytes=65536,
                         kill_grace_s=0.5, limits={"fsize": 0}, pass_fds=held.fds(),
                         filters=held.filters())
    held.close()
    assert outcome.truncated and outcome.output_bytes == 65536 == len(b"".join(got))
