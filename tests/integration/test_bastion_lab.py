"""A target reachable only through a bastion, for real. Two lab targets: the bastion, and an
inner target whose SSH port `lab up --behind` binds in the bastion's network namespace (from
this machine nothing listens there; from the bastion it is 127.0.0.1:PORT). The target tier
is deployed to the inner one by the real playbook, through the bastion. On the bastion, a
jump user whose authorized_keys allow the tiers' keys nothing but forwarding to that port.
The server's inventory reaches the inner target with `-J jump@bastion`, strict host keys on
both hops: `hosts trust` records both, doctor passes the read and action tiers, the MCP
server (stdio) runs a command there; an unknown or a changed bastion key is refused. (The
bastion gets the target tier too, so the jump's cost can be measured against it.)"""

import json
import os
import socket
import subprocess
import time

import anyio
import pytest
import yaml
from integration.deployed import ANSIBLE, Deployed, init_keys, lab_env
from lab_support import require_lab
from mcp import Client, StdioServerParameters
from paths_support import CLI, REPO

from mcp_linux_infra.inventory import load_inventory
from mcp_linux_infra.settings import Settings
from mcp_linux_infra.ssh.errors import HostKeyChanged, HostKeyUnknown
from mcp_linux_infra.ssh.hostkeys import KnownHosts
from mcp_linux_infra.ssh.pool import Pool

pytestmark = pytest.mark.lab
PREFIX = "ibs"
BASTION, INNER = f"{PREFIX}-01", f"{PREFIX}-02"


def _cli(env, *args, check=True, timeout=900):
    out = subprocess.run([CLI, *args], env=env, capture_output=True, text=True,
                         timeout=timeout, cwd=REPO, check=False)
    if check:
        assert out.returncode == 0, (args, out.stdout[-3000:], out.stderr[-3000:])
    return out


@pytest.fixture(scope="module")
def bastion(tmp_path_factory):
    """(lab handle, bastion port, inner port, server env) with the lab up; `lab down` after."""
    require_lab()
    root = tmp_path_factory.mktemp("bastion")
    env = lab_env(root, PREFIX)
    keys_dir = init_keys(root, env)
    variables = yaml.safe_load((ANSIBLE / "inventory/group_vars/lab.yml").read_text())
    variables["mcp_infra_keys_dir"] = str(keys_dir)
    (root / "vars.json").write_text(json.dumps(variables))
    try:
        _cli(env, "lab", "up", "--hosts", "1")
        _cli(env, "lab", "up", "--hosts", "2", "--behind", BASTION)
        state = json.loads((root / "lab/state.json").read_text())
        ports = {name: t["port"] for name, t in state["targets"].items()}
        lab = Deployed(root=root, env=env, hosts=ports, keys_dir=keys_dir,
                       vars_file=root / "vars.json")
        lab.playbook("deploy-mcp-infra.yml")  # the inner one through the bastion, as root
        allowed = f'restrict,port-forwarding,permitopen="127.0.0.1:{ports[INNER]}"'
        lines = "".join(f"{allowed} {(keys_dir / name).read_text().strip()}\n"
                        for name in ("mcp-reader.key.pub", "pra-exec.key.pub"))
        lab.root_ok("useradd --create-home --shell /usr/sbin/nologin -p '*' jump && "
                    "install -d -m 700 -o jump -g jump ~jump/.ssh", BASTION)
        out = lab.ssh_root("umask 077 && cat > ~jump/.ssh/authorized_keys && "
                           "chown jump:jump ~jump/.ssh/authorized_keys", stdin=lines,
                           host=BASTION)
        assert out.returncode == 0, out.stderr
        state_dir = root / "server"
        inventory = root / "server-inventory.ini"
        inventory.write_text(
            f"[inner]\n{INNER} ansible_host=127.0.0.1 ansible_port={ports[INNER]} "
            f"ansible_ssh_common_args='-o StrictHostKeyChecking=yes "
            f"-J jump@127.0.0.1:{ports[BASTION]}'\n")
        server_env = {k: v for k, v in os.environ.items() if not k.startswith("LINUX_MCP_")}
        server_env.update(LINUX_MCP_INVENTORY=str(inventory), LINUX_MCP_KEYS_DIR=str(keys_dir),
                          LINUX_MCP_STATE_DIR=str(state_dir), LINUX_MCP_SSH_CONFIG="/dev/null",
                          XDG_CONFIG_HOME=str(root / "config"), COLUMNS="220")
        yield lab, ports[BASTION], ports[INNER], server_env
    finally:
        subprocess.run([CLI, "lab", "down"], env=env, check=False, capture_output=True,
                       timeout=300, cwd=REPO)


def test_the_inner_target_is_not_reachable_from_here(bastion):
    _, _, inner_port, _ = bastion
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", inner_port), timeout=10).close()


def _known(env) -> set[str]:
    path = os.path.join(env["LINUX_MCP_STATE_DIR"], "known_hosts")
    return set(open(path).read().splitlines()) if os.path.exists(path) else set()


def test_trust_doctor_and_the_mcp_server_through_the_bastion(bastion):
    lab, bastion_port, _, env = bastion
    trusted = _cli(env, "hosts", "trust", INNER, "--yes")
    assert f"{INNER}'s jump host 127.0.0.1 ([127.0.0.1]:{bastion_port})" in trusted.stderr
    # what `hosts trust` recorded is what the lab knows the two hosts' keys to be
    assert _known(env) == set(lab.known_hosts.read_text().splitlines())
    listed = _cli(env, "hosts", "list")
    assert f"via jump@127.0.0.1:{bastion_port}" in listed.stdout
    assert "known_hosts: " in listed.stderr

    doctor = _cli(env, "doctor", INNER, "--json", check=False)
    checks = {c["check"]: c for c in json.loads(doctor.stdout)["hosts"][0]["checks"]}
    for name in ("host_key", "route", "reader_key", "action_key", "versions", "sessions"):
        assert checks[name]["status"] == "ok", checks[name]
    assert f"via jump@127.0.0.1:{bastion_port}" in checks["route"]["why"]

    async def session():
        params = StdioServerParameters(command=CLI, args=["serve"], env=env, cwd=str(lab.root))
        async with Client(params) as client:
            hosts = await client.call_tool("list_hosts", {"format": "json"})
            assert [(h["name"], h["reachable"]) for h in hosts.structured_content["hosts"]] \
                == [(INNER, True)], hosts.content[0].text
            ran = await client.call_tool("run_diagnostic", {"host": INNER,
                                                            "command": "hostname"})
            assert not ran.is_error and INNER in ran.content[0].text, ran.content[0].text
    anyio.run(session)


def _pool(lab, env, known_hosts, name=INNER, inventory=None):
    settings = Settings(_env_file=None, inventory=[inventory or env["LINUX_MCP_INVENTORY"]],
                        keys_dir=lab.keys_dir, known_hosts=known_hosts,
                        ssh_config="/dev/null", connect_timeout=10, reader_sessions=0)
    host = load_inventory(settings.inventory).hosts[name]
    return Pool(settings, KnownHosts(known_hosts)), host


@pytest.mark.parametrize("bastion_key", ["unknown", "changed"])
def test_an_unknown_or_changed_bastion_key_is_refused(bastion, tmp_path, bastion_key):
    lab, bastion_port, inner_port, env = bastion
    lines = lab.known_hosts.read_text().splitlines()
    inner = [line for line in lines if line.startswith(f"[127.0.0.1]:{inner_port} ")]
    known = tmp_path / "known_hosts"
    if bastion_key == "changed":  # the bastion's entry holds another ed25519 key: the inner's
        forged = inner[0].replace(f"[127.0.0.1]:{inner_port} ", f"[127.0.0.1]:{bastion_port} ")
        known.write_text("\n".join([*inner, forged]) + "\n")
    else:
        known.write_text("\n".join(inner) + "\n")
    pool, host = _pool(lab, env, known)
    expected = HostKeyChanged if bastion_key == "changed" else HostKeyUnknown
    try:
        with pytest.raises(expected) as err:
            pool.run(host, "mcp:version")
    finally:
        pool.close()
    assert f"[127.0.0.1]:{bastion_port}" in str(err.value)
    assert err.value.hint.endswith(f"hosts trust {INNER}")


def _fresh(lab, env, host_name, inventory, rounds) -> float:
    """Mean seconds of a fresh pool's connection and one `mcp:version` (a pool per round)."""
    began = time.monotonic()
    for _ in range(rounds):
        pool, host = _pool(lab, env, lab.known_hosts, host_name, inventory)
        try:
            assert pool.run(host, "mcp:version").exit_code == 0
        finally:
            pool.close()
    return (time.monotonic() - began) / rounds


def test_measured_cost_of_the_jump(bastion):
    """A fresh connection, authentication and `mcp:version` as mcp-reader, to the bastion
    directly and to the inner target through it: ours (the pool) and OpenSSH's (`ssh -W`
    through the jump user, which is what -J does), as ratios. Printed, not asserted: the
    machine's speed is not under test (bench/bench_jump.py runs more rounds)."""
    lab, bastion_port, inner_port, env = bastion
    rounds = int(os.environ.get("MCP_BENCH_ROUNDS", "5"))
    ours_direct = _fresh(lab, env, BASTION, lab.inventory, rounds)
    ours_jump = _fresh(lab, env, INNER, env["LINUX_MCP_INVENTORY"], rounds)
    options = lab.ssh_options()
    proxy = " ".join(["ssh", *options, "-i", str(lab.reader_key), "-p", str(bastion_port),
                      "-W", "%h:%p", "jump@127.0.0.1"])

    def plain(*extra) -> float:
        began = time.monotonic()
        for _ in range(rounds):
            out = subprocess.run(["ssh", *options, "-i", str(lab.reader_key), *extra,
                                  "mcp-reader@127.0.0.1", "mcp:version"], input="",
                                 capture_output=True, text=True, timeout=60, check=False)
            assert out.returncode == 0, out.stderr
        return (time.monotonic() - began) / rounds
    ssh_direct = plain("-p", str(bastion_port))
    ssh_jump = plain("-o", f"ProxyCommand={proxy}", "-p", str(inner_port))
    print(f"\nmeasured, {rounds} fresh connections + mcp:version each (ms): ours direct "
          f"{ours_direct * 1000:.0f}, through the jump {ours_jump * 1000:.0f} (x"
          f"{ours_jump / ours_direct:.2f}); OpenSSH direct {ssh_direct * 1000:.0f}, through the "
          f"jump {ssh_jump * 1000:.0f} (x{ssh_jump / ssh_direct:.2f}); ours/OpenSSH direct "
          f"{ours_direct / ssh_direct:.2f}, through the jump {ours_jump / ssh_jump:.2f}")
