"""The adversarial corpus through real ssh against a target deployed by deploy-mcp-infra.yml.

Same cases and case runner as the local corpus test (tests/security/wrapper_corpus.py), but
every request is a real session of `mcp-reader` on a lab target: sshd, the forced command,
the deployed wrapper, policy and permissions. Canaries live on the target: secrets that
mcp-reader can read but the policy denies, planted symlinks, a loopback listener, a file
that must not appear, and no mcp-reader process may outlive the run. Sessions share one
ControlMaster connection (each case is still its own session, forced command and all).
"""

import secrets
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from corpus_support import Canaries, load_corpus, run_case

pytest_plugins = ["integration.deployed"]
pytestmark = pytest.mark.lab
LISTENER_PORT = 47001
WORKERS = 4

LISTENER = f"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", {LISTENER_PORT})); s.listen(16)
while True:
    c, _ = s.accept(); c.close()
    with open("/run/mcp-canary-hits", "a") as f: f.write("hit\\n")
"""


@pytest.fixture(scope="module")
def target_canaries(deployed):
    token = secrets.token_hex(8)
    secret = f"MCP-CANARY-SECRET-{token}"
    name = f"mcp-canary-{token}"
    d, etc, write_target = f"/var/log/{name}", f"/etc/{name}", f"/tmp/{name}-written"
    deployed.root_ok(
        f"set -e; mkdir -m 755 {d} {etc}; "
        f"for f in server.key id_ed25519 app.env .env; do echo {secret} > {d}/$f; "
        f"chmod 644 {d}/$f; done; echo {secret} > {etc}/credentials.txt; "
        f"chmod 644 {etc}/credentials.txt; echo PUBLIC-{token} > {d}/plain.log; "
        f"chmod 644 {d}/plain.log; ln -s {d}/server.key {d}/link.log; "
        f"ln -s /etc/shadow {d}/shadow-link.log; ln -s /root {d}/root-link; "
        f"ln -s {d} {d}/dir-link; ln -s {d}/plain.log {d}/plain-link.log; "
        f"rm -f /run/mcp-canary-hits; "
        f"systemd-run --quiet --unit=mcp-canary-listener /usr/bin/python3 -c '{LISTENER}'")
    values = {"canary_dir": d, "canary_name": name, "secret_file": f"{d}/server.key",
              "secret_link": f"{d}/link.log", "etc_secret": f"{etc}/credentials.txt",
              "write_target": write_target, "listener_port": LISTENER_PORT}
    listing = deployed.root_ok(f"ls -A {d}")
    # Per-case checks are the output ones; the target-side canaries are checked once, at the
    # end, over root's own connection (an escape shows there; bisect the corpus to find it).
    canaries = Canaries(values, secrets=[secret], must_not_exist=[])
    yield canaries, d, write_target, listing
    deployed.ssh_root(f"systemctl stop mcp-canary-listener; rm -rf {d} {etc} {write_target} "
                      "/run/mcp-canary-hits")


def test_corpus_holds_over_real_ssh(deployed, target_canaries, tmp_path):
    canaries, canary_dir, write_target, listing = target_canaries
    control = tmp_path / "mux"
    base = ["ssh", "-F", "/dev/null", "-o", f"UserKnownHostsFile={deployed.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none", "-o", "ControlMaster=auto",
            "-o", f"ControlPath={control}", "-o", "ControlPersist=300", "-o", "LogLevel=ERROR",
            "-i", str(deployed.reader_key), "-p", str(deployed.port), "mcp-reader@127.0.0.1"]

    def runner(command, stdin):
        argv = base + ([] if command is None else ["--", command])
        done = subprocess.run(argv, input=stdin or b"", capture_output=True, timeout=60)
        return done.returncode, done.stdout, done.stderr

    cases = load_corpus()
    # open the master first so the workers share it instead of racing to create one
    assert runner(b"mcp:version", None)[0] == 0

    def share(index):
        failures = []
        for case in cases[index::WORKERS]:
            problems = run_case(runner, case, canaries, time_limit_s=40)
            if problems:
                failures.append((case["cat"], case.get("cmd") or case.get("cmd_hex"), problems))
        return failures

    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            failures = [f for part in pool.map(share, range(WORKERS)) for f in part]
    finally:
        subprocess.run(base[:-1] + ["-O", "exit", "mcp-reader@127.0.0.1"], capture_output=True,
                       timeout=30)
    assert failures == []
    after = deployed.ssh_root(
        f"ls -A {canary_dir}; echo ---; cat /run/mcp-canary-hits 2>/dev/null | wc -l; "
        f"echo ---; test -e {write_target} && echo written; echo ---; "
        "sleep 1; pgrep -u mcp-reader -a || true").stdout.split("---\n")
    assert after[0] == listing, "the canary directory changed"
    assert after[1].strip() == "0", "the canary listener was reached"
    assert after[2].strip() == "", "a file was written"
    assert after[3].strip() == "", "mcp-reader processes outlived their requests"
