"""pra-exec, the forced command of pra-runner: routing, refusals and the hand-off to sudo."""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from mcp_infra_target.actions import exec as pra_exec
from mcp_infra_target.core.layout import Layout
from mcp_infra_target.core.refusal import Refusal
from pra_support import (
    HOST,
    PRA_EXEC,
    PRA_RUN,
    REPO,
    SYSTEM,
    refusal,
    result,
)


@pytest.mark.parametrize("command, expected", [
    ("list", ("list", None, None)),
    ("run", ("run", None, None)),
    ("show restart_service", ("show", "restart_service", None)),
    ("mcp:trace=abc-1.2_3 list", ("list", None, "abc-1.2_3")),
    ("mcp:trace=t run", ("run", None, "t")),
    ("  show   touch_file ", ("show", "touch_file", None)),
])
def test_parse_accepts(command, expected):
    assert pra_exec.parse(command) == expected


@pytest.mark.parametrize("command, reason", [
    (None, "shell_request"),
    ("", "bad_command"),
    ("x" * 257, "bad_command"),
    ("/usr/lib/openssh/sftp-server", "bad_command"),
    ("internal-sftp", "unknown_command"),
    ("scp -t /tmp", "bad_command"),
    ("list; id", "bad_command"),
    ("run && sh", "bad_command"),
    ("list\nid", "bad_command"),
    ("list\x00", "bad_command"),
    ("show 'touch_file'", "bad_command"),
    ("show $(id)", "bad_command"),
    ("list\u202e", "bad_command"),
    ("lïst", "bad_command"),
    ("list extra", "unknown_command"),
    ("show", "unknown_command"),
    ("show a b", "unknown_command"),
    ("run now", "unknown_command"),
    ("LIST", "unknown_command"),
    ("sudo -n /usr/local/sbin/pra-run", "bad_command"),
    ("show ../x", "bad_command"),
    ("show Touch", "unknown_action"),
    ("mcp:trace= list", "bad_trace_id"),
    ("mcp:trace=" + "a" * 65 + " list", "bad_trace_id"),
    ("mcp:trace=a:b list", "bad_trace_id"),
    ("mcp:trace=a mcp:trace=b list", "unknown_command"),
    ("mcp:policy", "unknown_command"),
])
def test_parse_refuses(command, reason):
    with pytest.raises(Refusal) as caught:
        pra_exec.parse(command)
    assert caught.value.reason == reason


def test_sudo_argv_is_fixed():
    assert pra_exec.sudo_argv(Layout()) == ["/usr/bin/sudo", "-n", "/usr/local/sbin/pra-run"]
    assert pra_exec.ENV == {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def test_with_trace():
    raw = b'{"document": "{}", "signature": "s"}'
    assert pra_exec.with_trace(raw, None) is raw
    assert json.loads(pra_exec.with_trace(raw, "t1")) == {
        "document": "{}", "signature": "s", "trace": "t1"}
    replaced = pra_exec.with_trace(b'{"trace": "old", "document": "d"}', "new")
    assert json.loads(replaced)["trace"] == "new"
    for unchanged in (b"junk", b"[1]", b'{"a": 1, "a": 2}', b"\xff"):
        assert pra_exec.with_trace(unchanged, "t1") == unchanged


def test_list(root):
    proc = root.pra_exec("list")
    assert proc.returncode == 0, proc.stderr
    catalog = json.loads(proc.stdout)
    assert catalog["host"] == HOST
    assert catalog["settings"]["max_window_seconds"] == 3600
    names = [a["name"] for a in catalog["actions"]]
    assert names == sorted(names) and "touch_file" in names
    touch = next(a for a in catalog["actions"] if a["name"] == "touch_file")
    assert touch["params"]["file"]["values"] == [root.file(n) for n in "abc"]
    assert touch["runs_as"] == "root"
    assert catalog["principals"] == ["alice", "bob", "carol"]
    assert root.syslog()[-1]["decision"] == "accepted"


def test_list_principals_none_when_allowed_signers_is_untrusted(root):
    signers = root.path / "etc/mcp-infra/allowed_signers"
    signers.chmod(0o666)
    proc = root.pra_exec("list")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["principals"] is None


def test_show(root):
    proc = root.pra_exec("mcp:trace=t7 show touch_file")
    assert proc.returncode == 0, proc.stderr
    action = json.loads(proc.stdout)
    assert action["name"] == "touch_file"
    assert action["steps"]["run"]["argv"] == ["/usr/bin/touch", "--", "{file}"]
    assert root.syslog()[-1]["trace"] == "t7"


def test_show_unknown_action(root):
    assert refusal(root.pra_exec("show nope"))["reason"] == "unknown_action"


def test_shell_request_refused_and_logged(root):
    answer = refusal(root.pra_exec(None))
    assert answer["reason"] == "shell_request" and answer["command"] == "pra-exec"
    last = root.syslog()[-1]
    assert last["decision"] == "refused" and last["request"] is None


def test_audit_record_of_an_oversized_request_is_capped(root):
    assert refusal(root.pra_exec("é" * 60000))["reason"] == "bad_command"
    line = (root.path / "var/log/mcp-wrapper-audit.jsonl").read_text().splitlines()[-1]
    assert len(line) <= 16384
    record = json.loads(line)
    assert record["decision"] == "refused" and record["request"].endswith("...[cut]")
    assert [f["field"] for f in record["record_cut"]["fields"]] == ["request"]


def test_broken_catalog_refused(root):
    (root.path / "etc/mcp-infra/actions.json").write_text("{")
    assert refusal(root.pra_exec("list"))["reason"] == "config_error"


def test_run_hands_exactly_the_envelope_to_sudo_pra_run(root):
    record = root.install_fake_sudo()
    data = root.envelope()
    proc = root.pra_exec("run", data)
    assert result(proc)["outcome"] == "changed"
    seen = json.loads(record.read_text())
    assert seen["argv"] == [str(root.path / "usr/bin/sudo"), "-n", "/usr/local/sbin/pra-run"]
    assert seen["env"] == pra_exec.ENV
    assert seen["stdin"].encode() == data
    assert root.log()[-1]["outcome"] == "changed"
    assert root.syslog()[-1]["exit_code"] == 0


def test_run_carries_the_trace_id(root):
    record = root.install_fake_sudo()
    proc = root.pra_exec("mcp:trace=req-42 run", root.envelope())
    assert result(proc)["trace"] == "req-42"
    assert json.loads(json.loads(record.read_text())["stdin"])["trace"] == "req-42"
    assert root.log()[-1]["trace"] == "req-42"


def test_run_passes_refusals_through(root):
    root.install_fake_sudo()
    answer = refusal(root.pra_exec("run", root.envelope(signer="pra")))
    assert answer["reason"] == "unknown_signer" and answer["command"] == "pra-run"


def test_run_oversized_input_never_reaches_sudo(root):
    record = root.install_fake_sudo()
    answer = refusal(root.pra_exec("run", b"x" * 70000))
    assert answer["reason"] == "bad_envelope"
    assert not record.exists()


@pytest.mark.parametrize("var", ["SSH_CONNECTION", "SSH_CLIENT", "SUDO_USER"])
def test_test_root_refused_over_ssh(root, var):
    proc = root.pra_exec("list", **{var: "192.0.2.1 5000 192.0.2.2 22"})
    answer = refusal(proc)
    assert answer["reason"] == "test_root_refused" and answer["rule"] == "bootstrap/test_root"
    assert proc.stdout == b""


@pytest.mark.parametrize("script", [PRA_EXEC, PRA_RUN])
def test_untrusted_library_is_refused(root, script):
    """A library file that others could write is never imported (same check as mcp-wrapper).

    The copy lives under the repo's git-ignored build/, whose parents are root's alone
    (the test root itself is under the world-writable /tmp)."""
    (REPO / "build").mkdir(exist_ok=True)
    copy = Path(tempfile.mkdtemp(prefix="pra-lib-", dir=REPO / "build"))
    try:
        shutil.copytree(SYSTEM / "lib" / "mcp_infra_target", copy / "mcp_infra_target",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (root.path / "usr/local/lib/mcp-infra").unlink()
        (root.path / "usr/local/lib/mcp-infra").symlink_to(copy)
        victim = copy / "mcp_infra_target" / "actions" / "catalog.py"
        victim.chmod(0o664)
        env = root.env(SSH_ORIGINAL_COMMAND="list")
        answer = refusal(subprocess.run([str(script)], input=b"", capture_output=True, check=False,
                                        timeout=30, env=env))
        assert answer["reason"] == "library_untrusted" and str(victim) in answer["detail"]
        victim.chmod(0o644)
        assert subprocess.run([str(PRA_EXEC)], capture_output=True, check=False, timeout=30,
                              env=env).returncode == 0
    finally:
        shutil.rmtree(copy)


def test_principals_of_allowed_signers(tmp_path):
    from mcp_infra_target.actions import signers
    path = tmp_path / "allowed_signers"
    path.write_text("# comment\n\nalice,bob ssh-ed25519 AAAA\n  carol cert-authority ssh-ed25519 "
                    "BBBB\nalice ssh-ed25519 CCCC\n")
    assert signers.principals(str(path)) == ["alice", "bob", "carol"]
    assert signers.principals(str(tmp_path / "missing")) is None
