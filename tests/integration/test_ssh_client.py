"""The real OpenSSH clients against both forced-command accounts of a deployed target: no
shell, no terminal, no forwarding of any kind, no file transfer; refused commands are refused
with the machine-readable refusal, ordinary diagnostics work.

Agent and X11 forwarding, tunnels and Unix-socket forwarding are not exercised here (they need
an agent, a display or a tun device on the client); sshd's effective settings for them
(disableforwarding yes, and each one off) are asserted in test_deploy.py, and the TCP
forwarding tests below show that sshd enforces DisableForwarding.
"""
from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time

import pytest
from net_support import free_port

pytest_plugins = ["integration.deployed"]
pytestmark = pytest.mark.lab

USERS = ["mcp-reader", "pra-runner"]


def refusal(proc) -> dict:
    """The wrapper's refusal: exit 126 and one JSON line on stderr."""
    assert proc.returncode == 126, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("{")]
    assert len(lines) == 1, proc.stderr
    return json.loads(lines[0])["mcp_refusal"]



def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"ssh never listened on {port}")


@pytest.mark.parametrize("user", USERS)
def test_no_shell(deployed, user):
    assert refusal(deployed.ssh(user, None))["reason"] in ("shell_request", "no_command")


@pytest.mark.parametrize("user, command", [("mcp-reader", None), ("mcp-reader", "mcp:version"),
                                           ("pra-runner", None), ("pra-runner", "list")])
def test_no_pty_even_when_forced(deployed, user, command):
    """sshd refuses the pty (PermitTTY no); a client that insists (-tt) then gives up the
    session, so nothing ever runs on a terminal, a shell request included."""
    out = deployed.ssh(user, command, options=["-tt"])
    assert "PTY allocation request failed" in out.stderr
    assert (out.returncode, out.stdout) == (255, "")


@pytest.mark.parametrize("user", USERS)
def test_no_remote_forwarding(deployed, user):
    out = deployed.ssh(user, None, options=["-N", "-o", "ExitOnForwardFailure=yes",
                                            "-R", f"127.0.0.1:{free_port()}:127.0.0.1:22"],
                       timeout=30)
    assert out.returncode == 255
    assert "remote port forwarding failed" in out.stderr


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("kind", ["local", "dynamic"])
def test_no_local_or_dynamic_forwarding(deployed, user, kind):
    """-N opens no session (so no forced command): only sshd's DisableForwarding stands
    between the client and the target's nginx on 127.0.0.1:80."""
    port = free_port()
    spec = (["-L", f"127.0.0.1:{port}:127.0.0.1:80"] if kind == "local"
            else ["-D", f"127.0.0.1:{port}"])
    argv = deployed.ssh_argv(user, options=["-N", "-o", "ExitOnForwardFailure=yes", *spec],
                             log_level="INFO")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port, proc)
        received = b""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            if kind == "dynamic":  # SOCKS5: no auth, then CONNECT 127.0.0.1:80
                conn.sendall(b"\x05\x01\x00")
                assert conn.recv(2) == b"\x05\x00"
                conn.sendall(b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50")
            else:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            try:
                while chunk := conn.recv(4096):
                    received += chunk
            except ConnectionResetError:  # how ssh drops a refused forward with data pending
                pass
        assert b"HTTP" not in received and not received.startswith(b"\x05\x00"), received
    finally:
        proc.kill()
        _, stderr = proc.communicate(timeout=10)
    assert "administratively prohibited" in stderr, stderr


@pytest.mark.parametrize("user", USERS)
def test_no_sftp(deployed, user, tmp_path):
    batch = tmp_path / "batch"
    batch.write_text("ls /\nput /etc/hostname /tmp/mcp-sftp-canary\n")
    argv = ["sftp", *deployed.ssh_options(), "-i", str(deployed.reader_key if user == "mcp-reader"
                                                       else deployed.pra_key),
            "-P", str(deployed.port), "-b", str(batch), f"{user}@127.0.0.1"]
    out = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert out.returncode != 0
    assert "mcp-sftp-canary" not in deployed.root_ok("ls /tmp")


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("legacy", [False, True], ids=["sftp-protocol", "scp-protocol"])
def test_no_scp_either_way(deployed, user, legacy, tmp_path):
    key = deployed.reader_key if user == "mcp-reader" else deployed.pra_key
    scp = ["scp", *deployed.ssh_options(), "-i", str(key), "-P", str(deployed.port)]
    scp += ["-O"] if legacy else []
    local = tmp_path / "hostname"
    down = subprocess.run(scp + [f"{user}@127.0.0.1:/etc/hostname", str(local)], check=False,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert down.returncode != 0 and not local.exists()
    up = subprocess.run(scp + ["/etc/hostname", f"{user}@127.0.0.1:/tmp/mcp-scp-canary"],
                        check=False, capture_output=True, text=True, timeout=60,
                        stdin=subprocess.DEVNULL)
    assert up.returncode != 0
    assert "mcp-scp-canary" not in deployed.root_ok("ls /tmp")


@pytest.mark.parametrize("user", USERS)
def test_no_rsync(deployed, user, tmp_path):
    """What an rsync client runs on the far side, sent as rsync sends it; then the real
    client if this machine has one."""
    for command in ("rsync --server --sender -logDtpre.iLsfxCIvu . /etc/hostname",
                    "rsync --server -logDtpre.iLsfxCIvu . /tmp/mcp-rsync-canary"):
        assert refusal(deployed.ssh(user, command))["reason"]
    if shutil.which("rsync"):
        rsh = " ".join(deployed.ssh_argv(user)[:-1])
        out = subprocess.run(["rsync", "-e", rsh, f"{user}@127.0.0.1:/etc/hostname",
                              str(tmp_path / "copy")], check=False, capture_output=True,
                             text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert out.returncode != 0 and not (tmp_path / "copy").exists()


@pytest.mark.parametrize("command", [
    "cat /etc/shadow", "bash -c id", "sh -i", "df -h; id", "python3 -c 'print(1)'",
    "/usr/lib/openssh/sftp-server", "internal-sftp", "scp -t /tmp",
    "sudo -n /usr/local/sbin/pra-run",
    "systemctl restart nginx", "journalctl --file /etc/shadow", "tail -f /var/log/syslog",
])
def test_reader_refuses_with_exit_126_and_one_json_line(deployed, command):
    got = refusal(deployed.ssh_reader(command))
    assert got["reason"] and got["rule"]


@pytest.mark.parametrize("command", ["id", "run extra", "show", "list;id",
                                     "sudo -n /usr/local/sbin/pra-run",
                                     "/usr/lib/openssh/sftp-server", "scp -f /etc/hostname"])
def test_pra_exec_refuses_with_exit_126_and_one_json_line(deployed, command):
    got = refusal(deployed.ssh_pra(command))
    assert got["reason"] and got["rule"]


@pytest.mark.parametrize("command, expect", [
    ("df -h", "Filesystem"),
    ("systemctl status nginx", "nginx"),
    ("journalctl -u nginx -n 5", ""),
    ("id", "groups="),
])
def test_reader_runs_ordinary_diagnostics(deployed, command, expect):
    out = deployed.ssh_reader(command)
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert expect in out.stdout


def test_a_site_denied_path_is_refused(deployed):
    """The fixture deploys with mcp_infra_readonly_extra_deny = lab-app's settings.py."""
    denied = deployed.ssh_reader("cat /srv/lab-app/labapp/settings.py")
    assert refusal(denied)["reason"] == "path_denied"
    assert deployed.ssh_reader("cat /srv/lab-app/manage.py").returncode == 0


def test_reader_identity_is_the_restricted_account(deployed):
    out = deployed.ssh_reader("id")
    assert out.stdout.startswith("uid=") and "(mcp-reader)" in out.stdout
    assert "adm" in out.stdout and "systemd-journal" in out.stdout and "docker" not in out.stdout


def test_pra_exec_lists_this_hosts_catalog(deployed):
    out = deployed.ssh_pra("list")
    assert out.returncode == 0, out.stderr
    catalog = json.loads(out.stdout)
    assert catalog["host"] == deployed.host
    shown = json.loads(deployed.ssh_pra("show start_service").stdout)
    assert shown["name"] == "start_service"


def test_a_session_over_real_sshd(deployed):
    """mcp:session through sshd's forced command: each frame judged like a request of its
    own and audited in the journal with the session's id; garbage ends it with a refusal."""
    frames = b"".join(json.dumps(f).encode() + b"\n" for f in (
        {"id": "a", "command": "mcp:trace=sess-itest id"},
        {"id": "b", "command": "cat /etc/shadow"},
        {"id": "c", "command": "mcp:session"})) + b"rm -rf /\n" + b'{"id": "d", "command": "id"}\n'
    out = deployed.ssh_reader("mcp:session", stdin=frames)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 0 and "mcp_session" in lines[0], out
    answers = {a["id"]: (a["exit"], base64.b64decode(a["stdout"]).decode(),
                         base64.b64decode(a["stderr"]).decode()) for a in lines[1:]}
    assert set(answers) == {"a", "b", "c", None}  # nothing after the garbage line
    assert answers["a"][0] == 0 and "(mcp-reader)" in answers["a"][1]
    assert answers["b"][0] == 126 and '"mcp_refusal"' in answers["b"][2]
    assert answers["c"][0] == 126 and "reserved_word_not_allowed_here" in answers["c"][2]
    assert answers[None][0] == 126 and "session_bad_frame" in answers[None][2]
    record = json.loads(deployed.root_ok(
        "journalctl -q -o cat -t mcp-wrapper -g sess-itest").splitlines()[-1])
    assert record["decision"] == "allowed" and record["session_id"]
    ended = [json.loads(line) for line in deployed.root_ok(
        "journalctl -q -o cat -t mcp-wrapper -g " + record["session_id"]).splitlines()]
    assert {"requests": 3, "ended": "bad_frame:session_bad_frame"} in [
        r.get("session") for r in ended]
