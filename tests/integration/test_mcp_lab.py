"""The MCP server for real, on the session's deployed lab (integration/deployed.py: the
target tier installed by the real playbook): `mcp-linux-infra serve` started over stdio as
Claude Desktop starts it, and the faults: the target's sshd stopped mid-session and started
again, a command past the client deadline, output past the target's cap, one host of five
down. The five-host inventory is the deployed target under its own name plus three aliases
(each alias has its own transport) and one host whose port nobody listens on."""

import json
import time

import anyio
import pytest
from mcp import Client, StdioServerParameters
from net_support import free_port
from paths_support import CLI

pytest_plugins = ["integration.deployed"]
pytestmark = pytest.mark.lab



@pytest.fixture
def fleet(deployed, tmp_path):
    """(state dir, server params factory, host names): five inventory hosts, four up."""
    port = deployed.port
    names = [deployed.host] + [f"alias-{i}" for i in (2, 3, 4)] + ["down-5"]
    lines = ["[fleet]"] + [f"{n} ansible_host=127.0.0.1 ansible_port={port}" for n in names[:4]]
    lines.append(f"down-5 ansible_host=127.0.0.1 ansible_port={free_port()}")
    lines += ["[fleet:vars]", ("ansible_ssh_common_args='-o StrictHostKeyChecking=yes "
                               f"-o UserKnownHostsFile={deployed.known_hosts}'")]
    (tmp_path / "inventory.ini").write_text("\n".join(lines) + "\n")

    def params(**settings) -> StdioServerParameters:
        env = {"LINUX_MCP_INVENTORY": str(tmp_path / "inventory.ini"),
               "LINUX_MCP_KEYS_DIR": str(deployed.keys_dir),
               "LINUX_MCP_KNOWN_HOSTS": str(tmp_path / "state/known_hosts"),
               "LINUX_MCP_STATE_DIR": str(tmp_path / "state"),
               "LINUX_MCP_AUDIT_LOG": str(tmp_path / "state/audit.jsonl"),
               "LINUX_MCP_CONNECT_TIMEOUT": "3"}
        env.update({f"LINUX_MCP_{k.upper()}": str(v) for k, v in settings.items()})
        return StdioServerParameters(command=CLI, args=["serve"], env=env, cwd=str(tmp_path))
    return tmp_path / "state", params, names



async def tool(client, name, **args):
    result = await client.call_tool(name, args)
    return result.is_error, result.structured_content, result.content[0].text


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_server_diagnoses_the_lab(deployed, fleet, mode):
    state, params, names = fleet
    host = deployed.host
    async with Client(params(), mode=mode) as client:
        failed, hosts, text = await tool(client, "list_hosts", format="json")
        assert not failed, text
        assert [(h["name"], h["reachable"]) for h in hosts["hosts"]] == [
            (n, n != "down-5") for n in sorted(names)]
        failed, report, text = await tool(client, "diagnose_system", host=host)
        assert not failed, text
        assert report["summary"]["degraded"] == [host]
        first = report["reports"][0]
        assert first["problems"] == {}, first["problems"]
        assert "lab-broken.service is failed (failed)" in [f["message"] for f in
                                                           first["findings"]]
        assert any(p["port"] == 80 for p in first["checks"]["ports"])
        failed, app, text = await tool(client, "get_service_status", host=host,
                                       service="lab-broken")
        assert not failed and app["properties"]["ActiveState"] == "failed", text
        failed, _, text = await tool(client, "run_diagnostic", host=host,
                                     command="cat /etc/shadow")
        assert failed and "refused" in text and "mcp_infra_readonly_extra_commands" in text
        failed, page, text = await tool(client, "fetch_logs", host=host, unit="lab-broken",
                                        lines=20)
        assert not failed and any("cannot read configuration" in e["message"]
                                  for e in page["entries"]), text
        failed, plugins, text = await tool(client, "command_catalog", host=host,
                                           mode="plugins")
        assert not failed and "systemd" in [p["plugin"] for p in plugins["plugins"]], text
    audit = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    trace = [r["trace"] for r in audit if r.get("tool") == "run_diagnostic"][-1]
    journal = deployed.root_ok(f"journalctl -q --no-pager -t mcp-wrapper -g {trace}")
    assert trace in journal  # the target's own record carries our trace id


@pytest.mark.anyio
async def test_faults_the_server_survives(deployed, fleet):
    _, params, names = fleet
    host = deployed.host
    async with Client(params(command_timeout=4), mode="legacy") as client:
        assert not (await tool(client, "run_diagnostic", host=host, command="uptime"))[0]
        # the target's sshd stops and every session drops; sshd is back five seconds later
        timer = "systemd-run -q --timer-property=AccuracySec=100ms"
        deployed.ssh_root(f"{timer} --on-active=6 /bin/systemctl start ssh; {timer} "
                          "--on-active=1 /bin/systemctl stop ssh lab-ssh-proxy.service")
        await anyio.sleep(2.5)
        failed, _, text = await tool(client, "run_diagnostic", host=host, command="uptime")
        assert failed and f"{host}: SSH handshake" in text, text
        await anyio.sleep(5)
        failed, out, text = await tool(client, "run_diagnostic", host=host, command="uptime")
        assert not failed and "load average" in out["stdout"], text  # recovered, same server
        # a command past the client deadline: `vmstat 1 8` takes 7 s, the deadline is 4 s
        began = time.monotonic()
        failed, _, text = await tool(client, "run_diagnostic", host=host, command="vmstat 1 8")
        assert failed and "no complete answer within 4 s" in text
        assert time.monotonic() - began < 7
        # output past the target's cap (256 KiB by default) is cut and flagged
        failed, big, text = await tool(client, "run_diagnostic", host=host,
                                       command="find /usr -maxdepth 6", format="json")
        assert not failed and big["truncated"] is True, text
        assert len(big["stdout"].encode()) <= 262144 + 1
        # one host of five down: the other four still answer
        failed, report, text = await tool(client, "diagnose_system", host="fleet",
                                          checks=["load", "failed_units"])
        assert not failed, text
        assert report["summary"]["unreachable"] == ["down-5"]
        assert report["summary"]["degraded"] == sorted(names[:4])
