"""The check-to-use race on path operands against the deployed wrapper, over real ssh.

A racing uid created inside the target swaps, in a world-writable directory under /run/lock
(under the read root /run), a public file and directory with links to a canary file and
directory in /var/backups (denied; the canary file is group adm, so mcp-reader could read
it but for the policy). Meanwhile mcp-reader sends over 2,000 requests through one
`mcp:session` over sshd's forced command: the canary's content and name never appear
(tests/security/path_race.py has the layout and the requests).
"""

import json
import secrets
import subprocess

import pytest
from race_support import RACER, Tally, batch_frame, outputs, requests

pytest_plugins = ["integration.deployed"]
pytestmark = pytest.mark.lab

SINGLE = 1600
BATCHES = 16  # of 32 entries each: 2112 requests in all
# The racer ends when its stdin closes (the test's ssh session ends), whatever happens here.
WATCHED = ("import os, sys, threading\n"
           "threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(0)),"
           " daemon=True).start()\n")


@pytest.fixture
def race(deployed):
    token = secrets.token_hex(6)
    racer = f"mcpt-race-{token}"
    w, denied = f"/run/lock/mcp-race-{token}", f"/var/backups/mcp-race-{token}"
    content, name = f"CANARY-CONTENT-{token}", f"CANARY-NAME-{token}"
    script = f"/run/mcp-race-{token}.py"
    racing = None
    try:
        deployed.root_ok(
            f"set -e; useradd --system --user-group --no-create-home --home-dir /nonexistent "
            f"--shell /usr/sbin/nologin {racer}; mkdir -m 755 {denied}; "
            f"echo {content} > {denied}/f; chgrp adm {denied}/f; chmod 640 {denied}/f; "
            f"touch {denied}/{name}; mkdir {w}; chmod 777 {w}")
        out = deployed.ssh_root(f"cat > {script} && chmod 644 {script}",
                                stdin=WATCHED + RACER)
        assert out.returncode == 0, out.stderr
        racing = subprocess.Popen(
            deployed.ssh_argv("root") + [(f"setpriv --reuid={racer} --regid={racer} "
                                          f"--clear-groups /usr/bin/python3 -I {script} {w} "
                                          f"{denied}")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert racing.stdout.readline() == b"ready\n", racing.stderr.read()
        yield w, Tally([content, name])
        assert racing.poll() is None, racing.stderr.read()  # raced all along
    finally:
        if racing is not None:  # its stdin closes: the racer ends (WATCHED)
            racing.stdin.close()
            racing.wait(timeout=60)
        deployed.ssh_root(f"userdel {racer}; rm -rf {w} {denied} {script}")


def test_a_racing_uid_never_gets_a_denied_file_over_ssh(deployed, race):
    w, tally = race
    session = subprocess.Popen(deployed.ssh_argv("mcp-reader") + ["mcp:session"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    frames = [{"id": f"s{i}", "command": c} for i, c in enumerate(requests(w, SINGLE))]
    frames += [batch_frame(f"b{i}", requests(w, 32 * (i + 1))[-32:]) for i in range(BATCHES)]
    try:
        assert b"mcp_session" in session.stdout.readline(), session.stderr.read()
        for index, frame in enumerate(frames):
            session.stdin.write(json.dumps(frame).encode() + b"\n")
            session.stdin.flush()
            line = session.stdout.readline()
            assert line, (f"the session ended at request {index}", session.stderr.read(),
                          deployed.ssh_root("journalctl -q -o cat -t mcp-wrapper -n 3").stdout)
            answer = json.loads(line)
            assert answer["id"] == frame["id"], answer
            for row in outputs(answer, frame["command"]):
                tally.add(*row)
    finally:
        session.stdin.close()
        session.wait(timeout=60)
    print(tally.summary())
    assert tally.count >= 2000
    assert tally.public > 100 and tally.refused_denied > 10, tally.summary()
    assert tally.leaks == [], (tally.summary(), tally.leaks[:5])
