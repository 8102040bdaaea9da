"""The adversarial corpus against the real wrapper script, locally, as users of its own.

Canaries are real: secret files that the requesting user CAN read but the policy denies (so
a pass proves the wrapper, not file permissions, blocked them), a secret in the wrapper's
own environment, symlinks planted under /var/log, a loopback listener, a file that must not
be created, and no process of the requesting user may outlive its request. Cases run on four
workers, each as a user created for this test (users_support; in `adm` and
`systemd-journal` where the machine has them, as mcp-reader is), so "left behind" is checked
per request and no other process on the machine can share the uid.
"""

import grp
import os
import secrets
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from corpus_support import Canaries, load_corpus, run_case
from users_support import can_create_users, made_users, processes_of
from wrapper_support import make_root, remove_root, run_wrapper

pytestmark = pytest.mark.skipif(not can_create_users(),
                                reason="needs root: canaries under /var/log and users of its own")
WORKERS = 4


def reader_groups():
    """mcp-reader's groups, where this machine has them."""
    names = []
    for name in ("adm", "systemd-journal"):
        try:
            grp.getgrnam(name)
        except KeyError:
            continue
        names.append(name)
    return names


class Listener:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.count += 1
            conn.close()

    def close(self):
        self.stopping = True
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def world():
    token = secrets.token_hex(8)
    secret = "MCP-CANARY-SECRET-" + token
    name = "mcp-canary-" + token
    canary_dir = Path("/var/log") / name
    etc_dir = Path("/etc") / name
    write_target = Path("/tmp") / (name + "-written")
    canary_dir.mkdir(mode=0o755)
    etc_dir.mkdir(mode=0o755)
    for file_name in ("server.key", "id_ed25519", "app.env", ".env"):
        (canary_dir / file_name).write_text(secret + "\n")
        (canary_dir / file_name).chmod(0o644)
    (etc_dir / "credentials.txt").write_text(secret + "\n")
    (etc_dir / "credentials.txt").chmod(0o644)
    (canary_dir / "plain.log").write_text(f"PUBLIC-{token}\n")
    (canary_dir / "plain.log").chmod(0o644)
    (canary_dir / "link.log").symlink_to(canary_dir / "server.key")
    (canary_dir / "shadow-link.log").symlink_to("/etc/shadow")
    (canary_dir / "root-link").symlink_to("/root")
    (canary_dir / "dir-link").symlink_to(canary_dir)
    (canary_dir / "plain-link.log").symlink_to(canary_dir / "plain.log")
    listener = Listener()
    root = make_root()
    users = made_users(WORKERS, reader_groups())
    values = {"canary_dir": canary_dir, "canary_name": name, "secret_file": canary_dir / "server.key",
              "secret_link": canary_dir / "link.log", "etc_secret": etc_dir / "credentials.txt",
              "write_target": write_target, "listener_port": listener.port}

    def worker(user):
        """A runner and canaries for one worker, running as its own user."""
        baseline = processes_of(user.uid)

        def leftovers():
            deadline = time.monotonic() + 2
            extra = processes_of(user.uid) - baseline
            while extra and time.monotonic() < deadline:
                time.sleep(0.05)
                extra = processes_of(user.uid) - baseline
            return sorted(extra)

        def runner(command, stdin):
            done = run_wrapper(root, command, stdin=stdin, as_user=user,
                               extra_env={"MCP_CANARY": secret}, timeout=40)
            return done.returncode, done.stdout, done.stderr

        canaries = Canaries(values, secrets=[secret], must_not_exist=[write_target],
                            connections=lambda: listener.count, leftover_processes=leftovers)
        return runner, canaries

    with users as workers:
        yield worker, workers, canary_dir
    listener.close()
    remove_root(root)
    shutil.rmtree(canary_dir, ignore_errors=True)
    shutil.rmtree(etc_dir, ignore_errors=True)
    if write_target.exists():
        write_target.unlink()


def test_corpus_is_large_and_well_formed():
    cases = load_corpus()
    assert len(cases) >= 300
    for case in cases:
        assert case["expect"] in ("refused", "allowed-harmless") and case["cat"]
        assert set(case) <= {"cmd", "cmd_hex", "stdin", "cat", "expect"}


def test_corpus_holds_against_the_local_wrapper(world):
    worker, users, canary_dir = world
    listing = sorted(os.listdir(canary_dir))
    cases = load_corpus()

    def run_share(index):
        runner, canaries = worker(users[index])
        failures = []
        for case in cases[index::WORKERS]:
            problems = run_case(runner, case, canaries)
            if problems:
                failures.append((case["cat"], case.get("cmd") or case.get("cmd_hex"), problems))
        return failures

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        failures = [f for share in pool.map(run_share, range(WORKERS)) for f in share]
    assert sorted(os.listdir(canary_dir)) == listing
    assert failures == []
