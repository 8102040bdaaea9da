#!/usr/bin/env python3
"""50 concurrent MCP clients over streamable HTTP: one server, then two sharing PostgreSQL.

Not a test. Needs root (the lab) and Debian's `postgresql` (scripts/setup.sh). Boots an
isolated lab of N targets (prefix `ild`, a first port the OS says is free), deploys the
target tier with the real playbook, measures, and always takes the lab down again:

    .venv/bin/python bench/bench_load.py [--hosts 20] [--clients 50] [--calls 20]

Each client is the SDK's streamable HTTP client with one bearer token of `tokens new`
(scopes read,propose) shared by all; the per-token rate limit is raised for the bench
(LINUX_MCP_RATE_LIMIT_PER_MINUTE / _BURST), since 50 clients on one token are one team's
traffic, not one abusive client. Each client makes --calls calls of a read mix
(list_hosts check=false, get_service_status, run_diagnostic uptime, diagnose_system on one
host) on hosts chosen round-robin; in the two-server row every 8th call is a
propose_pra_action, so both servers write the shared store. Rows: calls/s, p50, p99, errors
(target: none), and calls/s of two servers against one.
"""

import argparse
import itertools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import anyio
import httpx2
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

REPO = Path(__file__).resolve().parent.parent
CLI = str(REPO / ".venv/bin/mcp-linux-infra")
PREFIX = "ild"

sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))
from pg_support import Cluster, bin_dir

from mcp_linux_infra.lab.mounts import mounts_under


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, env, cwd=REPO, timeout=1800):
    out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=timeout, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def lab_env(tmp: Path) -> dict:
    return dict(os.environ, LINUX_MCP_LAB_DIR=str(tmp / "lab"),
                LINUX_MCP_LAB_INVENTORY=str(tmp / "inventory.ini"),
                LINUX_MCP_LAB_NAME_PREFIX=PREFIX, LINUX_MCP_LAB_PORT_BASE=str(free_port()),
                ANSIBLE_CONFIG=str(REPO / "ansible/ansible.cfg"))


def setup(tmp: Path, env: dict, hosts: int) -> list[str]:
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
    return sorted(json.loads((tmp / "lab/state.json").read_text())["targets"])


def server_env(tmp: Path, name: str, database_url: str | None) -> dict:
    state = tmp / name
    env = dict(os.environ, LINUX_MCP_INVENTORY=str(tmp / "inventory.ini"),
               LINUX_MCP_KEYS_DIR=str(tmp / "keys"), LINUX_MCP_STATE_DIR=str(state),
               LINUX_MCP_KNOWN_HOSTS=str(tmp / "known_hosts"),
               LINUX_MCP_AUDIT_LOG=str(state / "audit.jsonl"),
               LINUX_MCP_TOKENS_FILE=str(tmp / "tokens.json"),
               LINUX_MCP_RATE_LIMIT_PER_MINUTE="1000000", LINUX_MCP_RATE_LIMIT_BURST="10000")
    if database_url:
        env["LINUX_MCP_DATABASE_URL"] = database_url
    return env


@contextmanager
def serve(env: dict, cwd: Path):
    """A server on a free port, as soon as it accepts connections: its URL."""
    port = free_port()
    with open(cwd / f"serve-{port}.log", "w") as log:
        proc = subprocess.Popen([CLI, "serve", "--transport", "http", "--port", str(port)],
                                env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log)
    try:
        for _ in range(600):  # poll until it listens (or died)
            if proc.poll() is not None:
                raise SystemExit(f"serve exited {proc.returncode}: see {cwd}/serve-{port}.log")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def calls(hosts: list[str], propose: bool):
    """The mix, endless, host by host."""
    for i, host in enumerate(itertools.cycle(hosts)):
        if propose and i % 8 == 7:
            yield "propose_pra_action", {"host": host, "action": "restart_service",
                                         "params": {"unit": "nginx"},
                                         "rationale": "load bench: a proposal nobody approves"}
            continue
        yield [("list_hosts", {"check": False}),
               ("get_service_status", {"host": host, "service": "ssh"}),
               ("run_diagnostic", {"host": host, "command": "uptime"}),
               ("diagnose_system", {"host": host, "checks": ["load", "memory"]})][i % 4]


async def load(urls: list[str], token: str, hosts: list[str], clients: int, n: int,
               propose: bool) -> tuple[float, list[float], list[str]]:
    samples, errors = [], []

    async def client(k: int) -> None:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                  timeout=httpx2.Timeout(60, read=120))
        own = hosts[k % len(hosts):] + hosts[:k % len(hosts)]
        try:
            async with http, Client(streamable_http_client(urls[k % len(urls)],
                                                           http_client=http)) as mcp:
                for tool, args in itertools.islice(calls(own, propose), n):
                    began = time.perf_counter()
                    result = await mcp.call_tool(tool, args)
                    samples.append(time.perf_counter() - began)
                    if result.is_error:
                        errors.append(f"{tool}: {result.content[0].text[:200]}")
        except Exception as error:  # noqa: BLE001 -- a transport failure is an error row, not a crash
            errors.append(f"client {k}: {type(error).__name__}: {error}"[:300])

    began = time.perf_counter()
    async with anyio.create_task_group() as group:
        for k in range(clients):
            group.start_soon(client, k)
    return time.perf_counter() - began, samples, errors


def row(label: str, measured) -> tuple:
    elapsed, samples, errors = measured
    ordered = sorted(samples) or [0.0]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (label, len(samples) / elapsed, statistics.median(ordered) * 1000, p99 * 1000,
            len(errors), errors[:5])


def measure(tmp: Path, hosts: list[str], clients: int, n: int) -> list:
    made = run([CLI, "tokens", "new", "bench", "--scopes", "read,propose"],
               server_env(tmp, "one", None))
    token = made.stdout.strip().splitlines()[-1].strip()
    rows = []
    with serve(server_env(tmp, "one", None), tmp) as url:
        anyio.run(load, [url], token, hosts, 1, 4, False)  # warm the pool
        rows.append(row(f"1 server (SQLite), {clients} clients",
                        anyio.run(load, [url], token, hosts, clients, n, False)))
    pg = bin_dir()
    if pg is None:
        print("no PostgreSQL server installed: skipping the two-server row", file=sys.stderr)
        return rows
    cluster = Cluster(pg)
    try:
        database = cluster.new_database()
        with ExitStack() as stack:
            urls = [stack.enter_context(serve(server_env(tmp, name, database), tmp))
                    for name in ("pg-a", "pg-b")]
            anyio.run(load, urls, token, hosts, 2, 4, True)
            rows.append(row(f"2 servers (PostgreSQL), {clients} clients",
                            anyio.run(load, urls, token, hosts, clients, n, True)))
    finally:
        cluster.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--calls", type=int, default=20, help="calls per client")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    env = lab_env(tmp)
    try:
        hosts = setup(tmp, env, args.hosts)
        rows = measure(tmp, hosts, args.clients, args.calls)
    finally:
        subprocess.run([CLI, "lab", "down"], env=env, cwd=REPO, capture_output=True,
                       timeout=600, check=False)
    print(f"{'setup':40} {'calls/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for label, rate, p50, p99, errors, _ in rows:
        print(f"{label:40} {rate:>8.1f} {p50:>8.1f} {p99:>8.1f} {errors:>7}")
    if len(rows) == 2:
        print(f"two servers / one: {rows[1][1] / rows[0][1]:.2f}x calls/s")
    for label, *_, errors, sample in rows:
        for line in sample:
            print(f"  {label}: {line}")
    print(f"({args.calls} calls per client; {args.hosts} lab hosts; {os.cpu_count()} CPUs; "
          f"load {os.getloadavg()[0]:.1f})")
    if not mounts_under(tmp):
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
