"""Helpers for the read-only tier's tests: a test root for the real wrapper script, running
it as a subprocess (optionally as an unprivileged user), and small inline policies."""

import copy
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIB = REPO / "system" / "lib"
WRAPPER = REPO / "system" / "bin" / "mcp-wrapper"
POLICY_FILE = REPO / "system" / "policy" / "readonly.json"



def default_policy_document():
    return json.loads(POLICY_FILE.read_text())


def make_root(policy_document=None):
    """A MCP_INFRA_TEST_ROOT: library symlinked from the source tree, policy copied in.

    World-readable (0755) so an unprivileged user can run the wrapper in it, with an audit
    file anyone may append to (the test-mode stand-in for syslog)."""
    root = Path(tempfile.mkdtemp(prefix="mcp-wrapper-root-"))
    root.chmod(0o755)
    (root / "usr/local/lib").mkdir(parents=True)
    (root / "usr/local/lib/mcp-infra").symlink_to(LIB)
    (root / "etc/mcp-infra").mkdir(parents=True)
    (root / "var/log").mkdir(parents=True)
    for directory in ("usr", "usr/local", "usr/local/lib", "etc", "etc/mcp-infra", "var", "var/log"):
        (root / directory).chmod(0o755)
    write_policy(root, policy_document or default_policy_document())
    audit = root / "var/log/mcp-wrapper-audit.jsonl"
    audit.touch()
    audit.chmod(0o666)
    return root


def write_policy(root, document):
    path = root / "etc/mcp-infra/readonly.json"
    path.write_text(json.dumps(document, indent=1))
    path.chmod(0o644)


def remove_root(root):
    shutil.rmtree(root, ignore_errors=True)


def audit_records(root):
    text = (root / "var/log/mcp-wrapper-audit.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def unprivileged_user():
    """(uid, gid) of `nobody` when running as root, else None (already unprivileged)."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def _drop(ids):
    """A preexec_fn becoming `ids`: a users_support.User (with its groups) or (uid, gid)."""
    if hasattr(ids, "preexec"):
        return ids.preexec()

    def preexec():
        os.setgroups([])
        os.setgid(ids[1])
        os.setuid(ids[0])
    return preexec


def run_wrapper(root, command, stdin=None, as_user=None, extra_env=None, timeout=60):
    """Run the real wrapper script like sshd would (SSH_ORIGINAL_COMMAND), minus sshd.

    `command` None leaves SSH_ORIGINAL_COMMAND unset (a shell request); bytes are passed as
    they are (invalid UTF-8 tests)."""
    env = {"PATH": "/usr/bin:/bin", "MCP_INFRA_TEST_ROOT": str(root), "USER": "tester"}
    env.update(extra_env or {})
    env_bytes = {k.encode(): v.encode() if isinstance(v, str) else v for k, v in env.items()}
    if command is not None:
        env_bytes[b"SSH_ORIGINAL_COMMAND"] = command.encode() if isinstance(command, str) else command
    return subprocess.run(
        [str(WRAPPER)], input=stdin, capture_output=True, env=env_bytes, timeout=timeout, check=False,
        preexec_fn=_drop(as_user) if as_user else None, cwd="/",
        **({} if stdin is not None else {"stdin": subprocess.DEVNULL}))


def wrapper_process(root, command, as_user=None):
    """The real wrapper as a running process with pipes (sessions), as sshd would start it."""
    env = {"PATH": "/usr/bin:/bin", "MCP_INFRA_TEST_ROOT": str(root), "USER": "tester",
           "SSH_ORIGINAL_COMMAND": command}
    return subprocess.Popen([str(WRAPPER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd="/",
                            preexec_fn=_drop(as_user) if as_user else None)


def refusal_of(completed):
    """The parsed refusal object, asserting the protocol: exit 126, one JSON line on stderr."""
    assert completed.returncode == 126, (completed.returncode, completed.stdout, completed.stderr)
    lines = completed.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])["mcp_refusal"]


def mini_policy(commands, paths=None, **overrides):
    """A small policy document: the default's environment/limits, custom commands."""
    document = copy.deepcopy(default_policy_document())
    document["plugins"] = {"test": {"commands": commands}}
    if paths is not None:
        document["paths"] = paths
    for key, value in overrides.items():
        document[key].update(value)
    return document


def load_document(document):
    """A policy document as the wrapper holds it after reading the file: top level checked,
    commands compiled on first use (`.validate()` or `.commands` compile all, as `policy.load`)."""
    from mcp_infra_target.readonly import policy
    data = json.dumps(document).encode()
    return policy.Policy(json.loads(data), hashlib.sha256(data).hexdigest())
