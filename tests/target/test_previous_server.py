"""Wire compatibility, old server -> this target: the MCP server of the previous version (its
own code, taken from git at PREVIOUS) talks to this version's real mcp-wrapper and pra-exec
(pra-run behind a recording sudo) over a real SSH server in-process: sessions, batch,
explain, policy, version, refusals, the catalog, and a signed action run end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import pytest
from pra_support import HOST
from ssh_support import FakeSSHD, known_hosts_line, new_key, wrapper_handler
from wrapper_support import REPO, make_root, remove_root

PREVIOUS = "6e61402"  # main before the layout refactor (issue 10)

CLIENT = r'''
import json, sys
from mcp_linux_infra.settings import Settings
from mcp_linux_infra.inventory import Host
from mcp_linux_infra.ssh.pool import Pool
from mcp_linux_infra.protocol import Target
from mcp_linux_infra.approvals.pra import ActionTier, ActionRefused

spec = json.load(sys.stdin)
settings = Settings(**spec["settings"])
host = Host(name=spec["host"], address="127.0.0.1", port=spec["port"], groups=("fake",), vars={})
pool = Pool(settings)
out = {}
target = Target(pool, host, "old-1")
run = target.run(["uptime"])
out["run"] = [run.status, run.exit_code, bool(run.stdout)]
refused = target.run(["rm", "-rf", "/"])
out["refused"] = [refused.status, refused.refusal.reason, refused.refusal.rule]
batch = target.batch({"load": ["cat", "/proc/loadavg"], "bad": ["nc", "-l"]})
out["batch"] = {k: [v.status, v.exit_code, v.refusal and v.refusal.reason]
                for k, v in batch.items()}
explain = target.explain("journalctl -n 5")
out["explain"] = [explain["allowed"], explain["rule"], explain["argv"][1:]]
policy = target.policy()
out["policy"] = sorted(policy["_effective"]["commands"]["uptime"]) + [
    sorted(policy["plugins"])[0]]
out["version"] = sorted(target.version())
tier = ActionTier(pool, host, "old-2")
catalog = tier.catalog()
out["catalog"] = [catalog.max_window, sorted(catalog.action("touch_file"))]
catalog.check_params("touch_file", spec["params"])
result = tier.run(spec["document"], spec["signature"], 30)
out["result"] = [result["outcome"], result["trace"], result["action"]]
try:
    tier.run(spec["document"], spec["signature"], 30)
except ActionRefused as refused_again:
    out["replay"] = refused_again.refusal.reason
pool.close()
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def previous_source(tmp_path_factory):
    """The previous version's src/, as it was committed."""
    if subprocess.run(["git", "cat-file", "-e", PREVIOUS + "^{commit}"], cwd=REPO,
                      capture_output=True, check=False).returncode != 0:
        pytest.skip(f"this clone does not hold {PREVIOUS} (shallow?)")
    directory = tmp_path_factory.mktemp("previous")
    archive = subprocess.run(["git", "archive", PREVIOUS, "src"], cwd=REPO, capture_output=True,
                             check=True).stdout
    tar = directory / "src.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as handle:
        handle.extractall(directory)
    return directory / "src"


def test_the_previous_server_works_with_this_target(previous_source, root, tmp_path):
    root.install_fake_sudo()
    wrapper_root = make_root()
    reader, pra = new_key(tmp_path / "reader.key"), new_key(tmp_path / "pra.key")

    def pra_exec(command: str, stdin: bytes):
        done = root.pra_exec(command, stdin)
        return done.returncode, done.stdout, done.stderr

    sshd = FakeSSHD(lambda c, s: (126, b"", b""), [reader, pra],
                    users={"mcp-reader": wrapper_handler(wrapper_root), "pra-runner": pra_exec})
    try:
        host = sshd.host(HOST)
        (tmp_path / "known_hosts").write_text(known_hosts_line(host, sshd.host_key))
        os.chmod(tmp_path / "known_hosts", 0o600)
        envelope = json.loads(root.envelope())
        spec = {"host": HOST, "port": sshd.port, "params": {"file": root.file("a")},
                "document": envelope["document"], "signature": envelope["signature"],
                "settings": {"_env_file": None, "inventory": [],
                             "known_hosts": str(tmp_path / "known_hosts"),
                             "reader_key": str(tmp_path / "reader.key"),
                             "pra_key": str(tmp_path / "pra.key"),
                             "state_dir": str(tmp_path / "state"), "connect_timeout": 5,
                             "command_timeout": 30, "keepalive_interval": 0}}
        env = {k: v for k, v in os.environ.items() if not k.startswith("LINUX_MCP_")}
        env["PYTHONPATH"] = str(previous_source)
        done = subprocess.run([sys.executable, "-c", CLIENT], input=json.dumps(spec), text=True,
                              capture_output=True, env=env, timeout=120, check=False,
                              cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        old_module = subprocess.run(
            [sys.executable, "-c", "import mcp_linux_infra; print(mcp_linux_infra.__file__)"],
            env=env, capture_output=True, text=True, check=True, cwd=tmp_path).stdout
        assert old_module.startswith(str(previous_source))
        got = json.loads(done.stdout)
    finally:
        sshd.stop()
        remove_root(wrapper_root)
    assert got["run"] == ["ok", 0, True]
    assert got["refused"] == ["refused", "unknown_command", "policy/commands"]
    assert got["batch"] == {"load": ["ok", 0, None], "bad": ["refused", 126, "unknown_command"]}
    assert got["explain"][:2] == [True, "systemd/journalctl"]
    assert {"executable", "forms", "rule"} <= set(got["policy"])
    assert got["version"] == ["name", "policy_sha256", "version"]
    assert got["catalog"][0] == 3600
    assert {"name", "description", "params", "runs_as", "cwd", "vars", "steps"} <= set(
        got["catalog"][1])
    assert got["result"] == ["changed", "old-2", "touch_file"]
    assert got["replay"] == "replayed_nonce"
    assert os.path.exists(root.file("a"))
