"""`mcp-linux-infra doctor` for real, on the session's deployed lab (integration/deployed.py):
every check ok on a deployed host, a host whose key is not trusted, a host that is down (an
inventory entry on a port the OS gave and nobody listens on) as one failed row among healthy
ones, and the JSON shape scripts read."""

import json
import subprocess
import time

import pytest
from net_support import free_port
from paths_support import CLI

pytest_plugins = ["integration.deployed"]
pytestmark = pytest.mark.lab

CHECKS = ["host_key", "route", "reader_key", "action_key", "versions", "sessions", "principals",
          "clock", "approval_rules"]


@pytest.fixture
def doctor_env(deployed, env, tmp_path):
    """The deployed lab's settings with both operators of its allowed_signers registered."""
    subprocess.run([CLI, "operators", "add", "expired-operator", "--public-key",
                    str(deployed.keys_dir / "expired-operator.key.pub")], env=env, check=True,
                   capture_output=True, timeout=60)
    return env


def inventory(path, deployed, hosts: dict[str, int], trusted: bool = True):
    lines = ["[web]"] + [f"{n} ansible_host=127.0.0.1 ansible_port={p}" for n, p in hosts.items()]
    if trusted:
        lines += ["[web:vars]", ("ansible_ssh_common_args='-o StrictHostKeyChecking=yes "
                                 f"-o UserKnownHostsFile={deployed.known_hosts}'")]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def doctor(env, inventory_file, *args):
    began = time.monotonic()
    proc = subprocess.run([CLI, "doctor", *args], check=False, capture_output=True, text=True,
                          env=dict(env, LINUX_MCP_INVENTORY=inventory_file, COLUMNS="220"),
                          timeout=300)
    return proc, time.monotonic() - began


def test_every_check_is_ok_on_a_deployed_host(deployed, doctor_env, tmp_path):
    hosts = inventory(tmp_path / "inventory.ini", deployed, {deployed.host: deployed.port})
    proc, took = doctor(doctor_env, hosts, deployed.host, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    [host] = data["hosts"]
    assert [c["check"] for c in host["checks"]] == CHECKS
    assert {c["check"]: c["status"] for c in host["checks"]} == dict.fromkeys(CHECKS, "ok"), \
        host["checks"]
    why = {c["check"]: c["why"] for c in host["checks"]}
    assert "expired-operator, operator" in why["principals"]
    assert data["totals"] == {"ok": len(CHECKS), "warn": 0, "fail": 0}
    began = time.monotonic()
    assert deployed.ssh_reader("mcp:version").returncode == 0
    ssh_took = time.monotonic() - began
    began = time.monotonic()
    subprocess.run([CLI, "--version"], check=True, capture_output=True, timeout=60)
    print(f"\nmeasured: doctor 1 host {took:.2f} s (the CLI's start alone "
          f"{time.monotonic() - began:.2f} s); one plain ssh mcp:version {ssh_took:.2f} s")
    table, _ = doctor(doctor_env, hosts)
    assert table.returncode == 0, table.stderr
    assert deployed.host in table.stdout and "approval_rules" in table.stdout
    assert f"1 host(s): {len(CHECKS)} ok, 0 warning(s), 0 failure(s)" in table.stderr


def test_an_untrusted_host_key_fails(deployed, doctor_env, tmp_path):
    hosts = inventory(tmp_path / "inventory.ini", deployed, {"stranger": deployed.port},
                      trusted=False)
    proc, _ = doctor(doctor_env, hosts, "stranger", "--json")
    assert proc.returncode == 1, proc.stderr
    checks = {c["check"]: c for c in json.loads(proc.stdout)["hosts"][0]["checks"]}
    assert checks["host_key"]["status"] == "fail"
    assert "is not known" in checks["host_key"]["why"]
    assert checks["reader_key"]["status"] == checks["action_key"]["status"] == "fail"
    assert "Traceback" not in proc.stderr


def test_a_group_with_a_host_down(deployed, doctor_env, tmp_path):
    """A group of the deployed host under five names and one host whose port nobody listens
    on: one failed row for it, every check ok for the others, exit 1, with progress."""
    up = {f"web-{i}": deployed.port for i in range(1, 6)}
    hosts = inventory(tmp_path / "inventory.ini", deployed, {**up, "down-6": free_port()})
    proc, took = doctor(doctor_env, hosts, "web", "--json")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["exit_code"] == 1
    assert [h["host"] for h in data["hosts"]] == ["down-6", *up]  # the inventory's order
    down = data["hosts"][0]
    assert down["status"] == "fail" and len(down["checks"]) == 1
    assert down["checks"][0]["check"] == "reachable"
    assert "cannot connect" in down["checks"][0]["why"]
    for host in data["hosts"][1:]:
        assert host["status"] == "ok", host
    assert data["totals"] == {"ok": 5 * len(CHECKS), "warn": 0, "fail": 1}
    began = time.monotonic()
    for _ in up:
        assert deployed.ssh_reader("mcp:version").returncode == 0
    print(f"\nmeasured: doctor 6 hosts (one down) {took:.2f} s; 5 plain ssh mcp:version one "
          f"after another {time.monotonic() - began:.2f} s")
    table, _ = doctor(doctor_env, hosts, "web")
    assert table.returncode == 1
    assert "down-6" in table.stdout and "reachable" in table.stdout
    assert "Traceback" not in table.stderr
