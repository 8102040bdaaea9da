"""A second uid races symlink swaps under a read root while the real wrapper script, run as
a third uid, serves thousands of requests: the denied canary never appears (path_race.py).

Both uids are created for this test (users_support): the reader can read the canary (its
group owns it), so only the wrapper stands between the canary and the output; the racer
cannot read it, so it can only reach it through the wrapper.
"""

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from race_support import RACER, Tally, batch_frame, outputs, requests
from users_support import can_create_users, made_users
from wrapper_support import default_policy_document, make_root, remove_root, wrapper_process

pytestmark = pytest.mark.skipif(not can_create_users(), reason="needs root to create users")

SINGLE = 1600
BATCHES = 16  # of 32 entries each: 2112 requests in all


@pytest.fixture
def race(tmp_path):
    token = secrets.token_hex(8)
    content, name = f"CANARY-CONTENT-{token}", f"CANARY-NAME-{token}"
    base = Path(tempfile.mkdtemp(prefix="mcp-race-", dir="/tmp"))
    with made_users(2) as (reader, racer):
        try:
            base.chmod(0o755)
            denied, w = base / "denied", base / "w"
            denied.mkdir(mode=0o755)
            (denied / "f").write_text(content + "\n")
            os.chown(denied / "f", 0, reader.gid)
            (denied / "f").chmod(0o640)
            (denied / name).touch()
            w.mkdir()
            w.chmod(0o777)  # world-writable, not sticky
            document = default_policy_document()
            document["paths"]["read_roots"].append(str(base))
            document["paths"]["deny"].append(str(denied))
            root = make_root(document)
            racing = None
            try:
                racing = subprocess.Popen(
                    ["/usr/bin/python3", "-I", "-c", RACER, str(w), str(denied)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=racer.preexec(),
                    cwd="/")
                assert racing.stdout.readline() == b"ready\n", racing.stderr.read()
                yield root, reader, str(w), Tally([content, name])
                assert racing.poll() is None, racing.stderr.read()  # raced all along
            finally:
                if racing is not None:
                    racing.kill()
                    racing.wait()
                remove_root(root)
        finally:
            shutil.rmtree(base, ignore_errors=True)


def test_a_racing_uid_never_gets_a_denied_file_through_the_wrapper(race):
    root, reader, w, tally = race
    session = wrapper_process(root, "mcp:session", as_user=reader)
    assert b"mcp_session" in session.stdout.readline()
    frames = [{"id": f"s{i}", "command": c} for i, c in enumerate(requests(w, SINGLE))]
    frames += [batch_frame(f"b{i}", requests(w, 32 * (i + 1))[-32:]) for i in range(BATCHES)]
    try:
        for frame in frames:
            session.stdin.write(json.dumps(frame).encode() + b"\n")
            session.stdin.flush()
            answer = json.loads(session.stdout.readline())
            assert answer["id"] == frame["id"], answer
            for row in outputs(answer, frame["command"]):
                tally.add(*row)
    finally:
        session.stdin.close()
        session.wait(timeout=60)
    print(tally.summary())
    assert tally.count >= 2000
    # the race ran: both sides of the swap were seen
    assert tally.public > 100 and tally.refused_denied > 10, tally.summary()
    assert tally.leaks == [], (tally.summary(), tally.leaks[:5])
