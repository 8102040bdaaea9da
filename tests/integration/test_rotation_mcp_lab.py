"""rotate-keys.yml while a live `mcp-linux-infra serve` keeps calling both tiers of the
target: not one call fails, and afterwards the target's own records show the server using
the new keys. The server's keys are a copy of the session's, rotated on one host; the host
is deployed again with the session's keys at the end, so other tests find it as before."""

import json
import os
import shutil
import subprocess

import anyio
import pytest
from mcp import Client, StdioServerParameters
from paths_support import CLI

pytest_plugins = ["integration.deployed"]
pytestmark = pytest.mark.lab
LOOP = (("run_diagnostic", {"command": "uptime"}), ("list_pra_actions", {}))



def fingerprint(public_key) -> str:
    return subprocess.run(["ssh-keygen", "-lf", str(public_key)], capture_output=True,
                          text=True, check=True).stdout.split()[1]


@pytest.mark.anyio
async def test_rotating_both_keys_under_a_diagnostics_loop(deployed, tmp_path):
    host = deployed.host
    keys = tmp_path / "keys"
    shutil.copytree(deployed.keys_dir, keys)
    old = {name: fingerprint(keys / f"{name}.key.pub") for name in ("mcp-reader", "pra-exec")}
    state = tmp_path / "state"
    env = dict(os.environ, LINUX_MCP_INVENTORY=str(deployed.inventory),
               LINUX_MCP_KEYS_DIR=str(keys), LINUX_MCP_STATE_DIR=str(state),
               LINUX_MCP_KNOWN_HOSTS=str(state / "known_hosts"),
               LINUX_MCP_AUDIT_LOG=str(state / "audit.jsonl"))
    calls, failures = [], []
    try:
        async with Client(StdioServerParameters(command=CLI, args=["serve"], env=env,
                                                cwd=str(tmp_path)), mode="legacy") as client:
            rotated = anyio.Event()

            async def loop():
                while not rotated.is_set():
                    for name, args in LOOP:
                        result = await client.call_tool(name, dict(args, host=host))
                        calls.append(name)
                        if result.is_error:
                            failures.append((name, result.content[0].text))

            async with anyio.create_task_group() as group:
                group.start_soon(loop)
                try:
                    await anyio.to_thread.run_sync(lambda: deployed.playbook(
                        "rotate-keys.yml", "-e", "mcp_infra_rotate=both",
                        "-e", f"mcp_infra_keys_dir={keys}", limit=host))
                finally:
                    rotated.set()
            last = await client.call_tool("run_diagnostic", {"host": host, "command": "uptime"})
            assert not last.is_error
        assert failures == []
        assert calls.count("run_diagnostic") > 10 and calls.count("list_pra_actions") > 10
        new = {name: fingerprint(keys / f"{name}.key.pub") for name in old}
        assert new != old and all(new[n] != old[n] for n in old)
        audit = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
        trace = [r["trace"] for r in audit if r.get("tool") == "run_diagnostic"][-1]
        record = json.loads(deployed.root_ok(
            f"journalctl -q -o cat -t mcp-wrapper -g {trace}").splitlines()[-1])
        assert record["key"] == new["mcp-reader"]  # the target saw the new key
        retired = next(keys.glob("mcp-reader.key.retired-*"))
        assert deployed.ssh_reader("mcp:version", key=retired).returncode == 255
    finally:
        deployed.playbook("deploy-mcp-infra.yml", limit=host)  # back to the session's keys
    assert deployed.ssh_reader("mcp:version").returncode == 0
    assert deployed.ssh_pra("list").returncode == 0
