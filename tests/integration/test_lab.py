"""The lab for real: boot two systemd targets, reach them, tear down, leave nothing behind."""

import json
import socket
import subprocess
from pathlib import Path

import pytest
from lab_support import require_lab
from paths_support import REPO

from mcp_linux_infra.lab.mounts import mounts_under
from mcp_linux_infra.lab.process import alive
from mcp_linux_infra.lab.target import ssh_argv

pytestmark = pytest.mark.lab
CLI = [str(REPO / ".venv/bin/mcp-linux-infra")]


def cli(env, *args, check=True):
    out = subprocess.run(CLI + list(args), env=env, capture_output=True, text=True, timeout=900,
                         cwd=REPO)
    if check and out.returncode != 0:
        raise AssertionError(f"{args} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def ssh(lab_dir: Path, port: int, command: str, known_hosts: Path | None = None):
    argv = ssh_argv(port, lab_dir / "bootstrap_ed25519", known_hosts or lab_dir / "known_hosts")
    return subprocess.run(argv + [command], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def _systemd_cgroup(pid: int) -> str:
    """The cgroup path of `pid` in the hierarchy systemd uses (v1 name=systemd, else v2)."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    named = [line for line in lines if ":name=systemd:" in line]
    return (named or [line for line in lines if line.startswith("0::")])[0].split(":", 2)[2]


def test_two_targets_boot_answer_and_leave_nothing_behind(lab_env, tmp_path):
    require_lab()
    env = lab_env("itl", 2441)
    lab_dir = tmp_path / "lab"
    cli(env, "lab", "up", "--hosts", "2")
    try:
        state = json.loads((lab_dir / "state.json").read_text())
        targets = state["targets"]
        assert sorted(targets) == ["itl-01", "itl-02"]
        inventory = (tmp_path / "inventory.ini").read_text()
        assert "itl-02 ansible_host=127.0.0.1 ansible_port=2442" in inventory

        for name, t in targets.items():
            got = ssh(lab_dir, t["port"], "hostname; systemctl is-system-running; "
                      "systemctl is-active nginx unbound; systemctl is-failed lab-broken; "
                      "systemctl is-enabled lab-app; systemctl is-active lab-app")
            assert got.stdout.split() == [name, "degraded", "active", "active", "failed",
                                          "enabled", "inactive"], got.stderr
        # each target's own cgroup tree: targets sharing one raced on each other's unit
        # cgroups (units failing at step CGROUP, at random)
        cgroups = {name: _systemd_cgroup(t["pid"]) for name, t in targets.items()}
        assert len(set(cgroups.values())) == 2, cgroups
        assert all("/mcp-lab-" + name + "-" in path for name, path in cgroups.items())
        # strict host keys: each target has its own key, and a wrong one is refused
        wrong = tmp_path / "wrong_known_hosts"
        a, b = (lab_dir / "known_hosts").read_text().splitlines()
        wrong.write_text(f"{a.split()[0]} {' '.join(b.split()[1:])}\n")
        refused = ssh(lab_dir, targets["itl-01"]["port"], "true", known_hosts=wrong)
        assert refused.returncode == 255
        assert "Host key verification failed" in refused.stderr

        status = cli(env, "lab", "status").stdout
        assert status.count("degraded") == 2

        again = cli(env, "lab", "up", "--hosts", "2")
        assert "already up" in again.stderr
        assert json.loads((lab_dir / "state.json").read_text())["targets"] == targets
    finally:
        down = cli(env, "lab", "down", check=False)
    assert down.returncode == 0, down.stderr
    for t in targets.values():
        assert not alive(t["pid"], t["started"]), "nspawn process left running"
        with socket.socket() as s:
            s.bind(("127.0.0.1", t["port"]))  # the port is free again
    assert mounts_under(tmp_path) == []
    for path in cgroups.values():  # the target's cgroups are removed with it
        top = path[:path.index("/supervisor")]
        for base in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup"):
            assert not Path(base + top).exists(), base + top
    assert not (lab_dir / "state.json").exists() and not (lab_dir / "targets").exists()
    assert not (tmp_path / "inventory.ini").exists()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(lab_dir) not in ps
    assert "nothing to do" in cli(env, "lab", "down").stderr


def test_a_taken_port_fails_clearly_and_changes_nothing(lab_env, tmp_path):
    require_lab()
    env = lab_env("itp", 2461)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 2462))
        holder.listen(1)
        out = cli(env, "lab", "up", "--hosts", "2", check=False)
    assert out.returncode == 2
    assert "port 127.0.0.1:2462 is taken" in out.stderr
    assert not (tmp_path / "lab" / "targets").exists()
    assert not (tmp_path / "inventory.ini").exists()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "machine=itp-" not in ps


def test_a_failed_image_build_leaves_no_image(lab_env, tmp_path):
    """A real debootstrap against a mirror that refuses connections."""
    require_lab()
    env = lab_env("itb", 2481)
    env["LINUX_MCP_LAB_CACHE_DIR"] = str(tmp_path / "cache")
    env["LINUX_MCP_LAB_MIRROR"] = "http://127.0.0.1:9/debian"
    out = cli(env, "lab", "up", check=False)
    assert out.returncode == 2 and "image build step failed" in out.stderr
    images = tmp_path / "cache" / "images"
    assert [p.name for p in images.iterdir() if not p.name.startswith(("build-", ".lock"))] == []
    assert mounts_under(tmp_path) == []
