"""ansible/playbooks/edge-tunnel.yml on a deployed lab target that plays both parts: the edge
(a systemd unit keeping `ssh -N -R` up) and its gateway (account mcp-tunnel, each edge's key
restricted to its own loopback port). Lab targets have private networks, so a second target
could not reach the gateway; with one target in both roles the tunnel is real all the same:
the gateway's 127.0.0.1:PORT leads to the edge's sshd, whose forced commands still decide.
Everything the playbook made is removed at the end."""

import json
import re
import subprocess
import time

import pytest
from paths_support import REPO

pytest_plugins = ["integration.deployed"]
pytestmark = pytest.mark.lab
PORT = 22007
TUNNEL = ("-F /dev/null -i /etc/mcp-edge-tunnel/id_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes"
          " -o UserKnownHostsFile=/etc/mcp-edge-tunnel/known_hosts -o StrictHostKeyChecking=yes"
          " -o ConnectTimeout=10")
CLEANUP = ("systemctl disable --now mcp-edge-tunnel.service; "
           "rm -f /etc/systemd/system/mcp-edge-tunnel.service; systemctl daemon-reload; "
           "rm -rf /etc/mcp-edge-tunnel /root/.edge-test; "
           "rm -f /etc/ssh/sshd_config.d/60-mcp-edge-tunnel.conf /etc/ssh/authorized_keys/mcp-tunnel; "
           "userdel mcp-tunnel; systemctl reload ssh")


@pytest.fixture
def inventory(deployed, tmp_path):
    """gw and edge: two inventory names for the one deployed target."""
    text = deployed.inventory.read_text()
    variables = text.split(":vars]", 1)[1].strip()
    path = tmp_path / "edge.ini"
    path.write_text(
        f"[mcp_gateways]\ngw ansible_host=127.0.0.1 ansible_port={deployed.port}\n\n"
        f"[mcp_edges]\nedge ansible_host=127.0.0.1 ansible_port={deployed.port} "
        f"mcp_edge_gateway=gw mcp_edge_tunnel_port={PORT} mcp_edge_restart_seconds=1\n\n"
        f"[all:vars]\n{variables}\n")
    yield path
    deployed.ssh_root(CLEANUP)


def playbook(deployed, inventory) -> subprocess.CompletedProcess:
    env = dict(deployed.env, ANSIBLE_CONFIG=str(REPO / "ansible/ansible.cfg"),
               ANSIBLE_NOCOLOR="1")
    out = subprocess.run([str(REPO / ".venv/bin/ansible-playbook"), "-i", str(inventory),
                          "playbooks/edge-tunnel.yml"], cwd=REPO / "ansible", env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-2000:]
    return out


def through_tunnel(deployed) -> str:
    """The host key that answers on the gateway's tunnel port, or ''."""
    out = deployed.ssh_root(f"ssh-keyscan -T 5 -t ed25519 -p {PORT} 127.0.0.1 2>/dev/null")
    return " ".join(out.stdout.split()[1:3])


def test_edge_tunnel(deployed, inventory):
    first = playbook(deployed, inventory)
    assert deployed.recap(first.stdout)["edge"]["changed"] > 0
    again = playbook(deployed, inventory)
    assert {h: r["changed"] for h, r in deployed.recap(again.stdout).items()} == {
        "edge": 0, "gw": 0}, deployed.changed_tasks(again.stdout)

    host_key = " ".join(deployed.root_ok("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2])
    assert deployed.root_ok("systemctl is-active mcp-edge-tunnel").strip() == "active"
    deadline = time.monotonic() + 30
    while through_tunnel(deployed) != host_key:
        assert time.monotonic() < deadline, "the tunnel never came up"
        time.sleep(0.5)
    listeners = deployed.root_ok(f"ss -H -tln sport = :{PORT}")
    assert {line.split()[3] for line in listeners.splitlines()} <= {f"127.0.0.1:{PORT}",
                                                                     f"[::1]:{PORT}"}

    # through the tunnel, the edge's own sshd and forced command answer as for any target
    reader = deployed.reader_key.read_text()
    deployed.ssh_root("install -d -m 0700 /root/.edge-test && cat > /root/.edge-test/key && "
                      "chmod 0600 /root/.edge-test/key", stdin=reader)
    deployed.ssh_root(f"echo '[127.0.0.1]:{PORT} {host_key}' > /root/.edge-test/known_hosts")
    version = deployed.root_ok(
        f"ssh -F /dev/null -i /root/.edge-test/key -o IdentitiesOnly=yes -o BatchMode=yes "
        f"-o UserKnownHostsFile=/root/.edge-test/known_hosts -p {PORT} "
        "mcp-reader@127.0.0.1 mcp:version")
    assert json.loads(version)["name"] == "mcp-wrapper"

    # the edge's key may do nothing on the gateway but listen on its own loopback port
    line = deployed.root_ok("grep -v '^#' /etc/ssh/authorized_keys/mcp-tunnel").strip()
    assert line.startswith(f'restrict,port-forwarding,permitlisten="localhost:{PORT}",'
                           'command="/usr/sbin/nologin" ssh-ed25519 ')
    attempts = {
        "shell": f"ssh {TUNNEL} mcp-tunnel@127.0.0.1 id",
        "other port": f"timeout 20 ssh {TUNNEL} -N -o ExitOnForwardFailure=yes "
                      f"-R localhost:{PORT + 1}:localhost:22 mcp-tunnel@127.0.0.1",
        "all addresses": f"timeout 20 ssh {TUNNEL} -N -o ExitOnForwardFailure=yes "
                         f"-R 0.0.0.0:{PORT + 2}:localhost:22 mcp-tunnel@127.0.0.1",
        "local forward": f"timeout 20 ssh {TUNNEL} -W localhost:22 mcp-tunnel@127.0.0.1",
    }
    for what, command in attempts.items():
        out = deployed.ssh_root(command, stdin="")
        assert out.returncode in (1, 255), (what, out.returncode, out.stdout, out.stderr)
        assert "uid=" not in out.stdout, what
    assert "remote port forwarding failed" in deployed.ssh_root(attempts["other port"]).stderr
    effective = deployed.root_ok("sshd -T -C user=mcp-tunnel,host=x,addr=127.0.0.1")
    for setting in ("allowtcpforwarding remote", "permittty no", "gatewayports no",
                    "x11forwarding no", "forcecommand /usr/sbin/nologin"):
        assert re.search(rf"^{setting}$", effective, re.MULTILINE), setting

    # the tunnel comes back by itself when its ssh dies
    deployed.root_ok("kill -KILL $(systemctl show -p MainPID --value mcp-edge-tunnel)")
    time.sleep(0.5)
    deadline = time.monotonic() + 30
    while through_tunnel(deployed) != host_key:
        assert time.monotonic() < deadline, "the tunnel did not come back"
        time.sleep(0.5)
