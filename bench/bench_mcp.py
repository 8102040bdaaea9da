#!/usr/bin/env python3
"""The MCP tier against plain OpenSSH and Ansible, as ratios measured in one run on a lab.

Not a test. Needs root (the lab). Boots an isolated lab of N targets (prefix `b4`, ports
2751+), deploys the target tier with the real playbook, measures, and always takes the lab
down again:

    .venv/bin/python bench/bench_mcp.py [--hosts 20] [--iterations 30]

Rows (issue 4's targets in brackets):
  warm    run_diagnostic `uptime` through the MCP server (in-process client, warm pool,
          kept mcp:session) vs ssh through a ControlMaster socket, same command, same
          wrapper (a new channel, so a wrapper start, per request)              [<= 1.0x]
          and, for scale, the pool with a channel per request (reader_sessions=0)
  cold    a fresh pool connection + `uptime` vs a fresh `ssh` (no sharing)
  batch   diagnose_system (six checks, one host) vs one run_diagnostic         [<= 1.5x]
  fanout  diagnose_system(load) on all N hosts vs on one host                   [<= 2x]
  ansible `ansible -m command -a 'cat /proc/loadavg'` on N hosts vs the fan-out [>= 10x]
  toon    TOON bytes / JSON bytes of each tool's result                 [<= 0.6x if tabular]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import yaml
from mcp import Client

REPO = Path(__file__).resolve().parent.parent
CLI = str(REPO / ".venv/bin/mcp-linux-infra")
PREFIX, PORT_BASE = "b4", 2751
SIX = ["load", "memory", "disk", "failed_units", "services", "errors"]

sys.path.insert(0, str(REPO / "src"))
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.inventory import load_inventory
from mcp_linux_infra.lab.mounts import mounts_under
from mcp_linux_infra.server.app import build_server
from mcp_linux_infra.server.state import AppState
from mcp_linux_infra.settings import Settings
from mcp_linux_infra.ssh.pool import Pool


def run(argv, env, cwd=REPO, timeout=1800):
    out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=timeout, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def median_ms(samples):
    return statistics.median(samples) * 1000


def timed(fn, n):
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return samples


async def atimed(fn, n):
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - began)
    return samples


def lab_env(tmp: Path) -> dict:
    return dict(os.environ, LINUX_MCP_LAB_DIR=str(tmp / "lab"),
                LINUX_MCP_LAB_INVENTORY=str(tmp / "inventory.ini"),
                LINUX_MCP_LAB_NAME_PREFIX=PREFIX, LINUX_MCP_LAB_PORT_BASE=str(PORT_BASE),
                ANSIBLE_CONFIG=str(REPO / "ansible/ansible.cfg"))


def setup(tmp: Path, env: dict, hosts: int) -> Settings:
    run([CLI, "keys", "init", "--dir", str(tmp / "keys")], env)
    print(f"lab up --hosts {hosts} ...", file=sys.stderr)
    run([CLI, "lab", "up", "--hosts", str(hosts)], env)
    variables = yaml.safe_load((REPO / "ansible/inventory/group_vars/lab.yml").read_text())
    variables["mcp_infra_keys_dir"] = str(tmp / "keys")
    (tmp / "vars.json").write_text(json.dumps(variables))
    print("deploying the target tier ...", file=sys.stderr)
    run([str(REPO / ".venv/bin/ansible-playbook"), "-i", str(tmp / "inventory.ini"), "-f",
         str(hosts), "playbooks/deploy-mcp-infra.yml", "-e", f"@{tmp / 'vars.json'}"], env,
        cwd=REPO / "ansible")
    settings = Settings(_env_file=None, inventory=[tmp / "inventory.ini"],
                        keys_dir=tmp / "keys", known_hosts=tmp / "state/known_hosts",
                        state_dir=tmp / "state", audit_log=tmp / "state/audit.jsonl",
                        fanout_concurrency=max(16, hosts))
    return settings


def ssh_argv(tmp: Path, port: int, *options: str) -> list[str]:
    return ["ssh", "-F", "/dev/null", "-i", str(tmp / "keys/mcp-reader.key"),
            "-o", f"UserKnownHostsFile={tmp / 'lab/known_hosts'}", "-o",
            "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            *options, "-p", str(port), "mcp-reader@127.0.0.1"]


async def measure(tmp: Path, env: dict, settings: Settings, n: int, hosts: int) -> list:
    inventory = load_inventory(settings.inventory)
    first = inventory.hosts[f"{PREFIX}-01"]
    rows = []
    control = tmp / "cm"
    master = ssh_argv(tmp, first.port, "-o", "ControlMaster=auto", "-o",
                      f"ControlPath={control}", "-o", "ControlPersist=300")
    subprocess.run(master + ["uptime"], capture_output=True, check=True)

    def open_state() -> AppState:  # audit to its file only: stderr is for the table
        return AppState.open(settings, audit=Audit(settings.audit_log, open(os.devnull, "w")))

    async with Client(build_server(open_state)) as client:
        async def tool(name, **args):
            result = await client.call_tool(name, args)
            if result.is_error:
                raise SystemExit(f"{name} failed: {result.content[0].text}")
            return result

        await tool("run_diagnostic", host=first.name, command="uptime")  # warm the pool
        warm_ssh, warm_mcp = [], []
        for _ in range(n):  # interleaved, so load changes hit both alike
            warm_ssh += timed(lambda: subprocess.run(master + ["uptime"], capture_output=True,
                                                     check=True), 1)
            warm_mcp += await atimed(lambda: tool("run_diagnostic", host=first.name,
                                                  command="uptime"), 1)
        rows.append(("warm", "run_diagnostic uptime", median_ms(warm_mcp),
                     "ssh ControlMaster uptime", median_ms(warm_ssh), "<= 1.0"))

        diag = await atimed(lambda: tool("diagnose_system", host=first.name, checks=SIX), n)
        rows.append(("batch", "diagnose_system, 6 checks", median_ms(diag),
                     "run_diagnostic uptime", median_ms(warm_mcp), "<= 1.5"))

        await tool("diagnose_system", host=PREFIX, checks=["load"])  # connect to every host
        one = await atimed(lambda: tool("diagnose_system", host=first.name,
                                        checks=["load"]), n)
        many = await atimed(lambda: tool("diagnose_system", host=PREFIX, checks=["load"]), n)
        rows.append(("fanout", f"diagnose_system(load), {hosts} hosts", median_ms(many),
                     "the same, 1 host", median_ms(one), "<= 2.0"))

        ansible = timed(lambda: run([str(REPO / ".venv/bin/ansible"), "-i",
                                     str(tmp / "inventory.ini"), PREFIX, "-f", str(hosts),
                                     "-m", "command", "-a", "cat /proc/loadavg"], env,
                                    cwd=REPO / "ansible"), max(3, n // 10))
        rows.append(("ansible", f"ansible -m command, {hosts} hosts", median_ms(ansible),
                     f"diagnose_system(load), {hosts} hosts", median_ms(many), ">= 10"))

        for name, args in [("get_top_processes", {"host": first.name, "limit": 50}),
                           ("list_hosts", {}),
                           ("command_catalog", {"host": first.name, "mode": "plugins"}),
                           ("command_catalog", {"host": first.name, "mode": "search",
                                                "query": "-"}),
                           ("diagnose_system", {"host": PREFIX, "checks": ["load"]})]:
            as_json = json.dumps((await tool(name, **args)).structured_content)
            as_toon = (await tool(name, format="toon", **args)).content[0].text
            rows.append(("toon", f"TOON bytes, {name}", len(as_toon.encode()), "JSON bytes",
                         len(as_json.encode()), "<= 0.6"))

    fresh_ssh = timed(lambda: subprocess.run(ssh_argv(tmp, first.port, "-o",
                                                      "ControlPath=none") + ["uptime"],
                                             capture_output=True, check=True), n)

    channels = Pool(settings.model_copy(update={"reader_sessions": 0}))
    try:
        channels.run(first, "uptime")
        per_channel = timed(lambda: channels.run(first, "uptime"), n)
    finally:
        channels.close()
    rows.insert(1, ("warm", "pool, a channel per request", median_ms(per_channel),
                    "ssh ControlMaster uptime", median_ms(warm_ssh), ""))

    def fresh_pool():
        pool = Pool(settings)
        try:
            pool.run(first, "uptime")
        finally:
            pool.close()
    cold = timed(fresh_pool, n)
    rows.insert(2, ("cold", "fresh pool connection + uptime", median_ms(cold),
                    "fresh ssh uptime", median_ms(fresh_ssh), ""))
    subprocess.run(master[:-1] + ["-O", "exit", "mcp-reader@127.0.0.1"], capture_output=True,
                   check=False)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=30)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-mcp-"))
    env = lab_env(tmp)
    try:
        settings = setup(tmp, env, args.hosts)
        rows = anyio.run(measure, tmp, env, settings, args.iterations, args.hosts)
    finally:
        subprocess.run([CLI, "lab", "down"], env=env, cwd=REPO, capture_output=True,
                       timeout=600, check=False)
        if not mounts_under(tmp):
            shutil.rmtree(tmp)
    print(f"{'row':8} {'measured':44} {'value':>10} {'against':36} {'value':>10} "
          f"{'ratio':>7}  target")
    for row, what, value, against, base, target in rows:
        unit = "" if row == "toon" else " ms"
        print(f"{row:8} {what[:44]:44} {value:>7.1f}{unit:3} {against[:36]:36} "
              f"{base:>7.1f}{unit:3} {value / base:>6.2f}x  {target}")
    print(f"(medians of {args.iterations} runs; {args.hosts} lab hosts; {os.cpu_count()} CPUs; "
          f"load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
