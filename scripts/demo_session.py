"""The demo's scripted session: a real MCP client (the SDK's, over stdio, as Claude Desktop
starts the server) plays the model; the operator approves through the real CLI.

diagnose -> find the stopped service -> propose a restart -> the model is refused until a
human approves -> the operator approves (`approvals approve ID --yes`) -> execute -> verify.
Run by scripts/demo.sh after the lab target is deployed; the lab's own outage scenario is
staged again first, so the session can be run any number of times.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax

REPO = Path(__file__).resolve().parent.parent
CLI = str(REPO / ".venv/bin/mcp-linux-infra")
console = Console()
KEY_SERVICES = "ssh,cron,rsyslog,systemd-journald,nginx,lab-app"


class Failed(Exception):
    pass


def step(title: str, why: str) -> None:
    console.rule(f"[bold]{title}")
    console.print(f"[dim]{why}[/]")


def lab_root(host: str, command: str) -> str:
    """A command as root on the lab target: the demo's stage hand, never the model."""
    done = subprocess.run([CLI, "lab", "ssh", host, "--", command], capture_output=True,
                          text=True, timeout=120, cwd=REPO, check=False)
    return done.stdout.strip()


async def tool(client: Client, name: str, refused: bool = False, **args) -> dict | str:
    shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
    console.print(f"[cyan]model →[/] [bold]{name}[/]({shown})")
    result = await client.call_tool(name, args)
    text = result.content[0].text if result.content else ""
    if result.is_error != refused:
        raise Failed(f"{name} {'succeeded' if result.is_error is False else 'failed'}: {text}")
    if result.is_error:
        console.print(f"[yellow]refused:[/] {text}")
        return text
    return result.structured_content


def show_json(data: object, title: str) -> None:
    console.print(Panel(Syntax(json.dumps(data, indent=1), "json", word_wrap=True),
                        title=title, expand=False))


async def session(host: str, env: dict[str, str], mode: str, server_log: Path) -> None:
    params = StdioServerParameters(command=CLI, args=["serve"], env=env, cwd=str(REPO))
    with server_log.open("a") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode=mode) as client:
            await _conversation(client, host, env)


async def _conversation(client: Client, host: str, env: dict[str, str]) -> None:
    step("1. diagnose", "The model asks for the host's health: one SSH round trip, "
                        "read-only, through the target's whitelist.")
    report = await tool(client, "diagnose_system", host=host,
                        checks=["failed_units", "services", "errors"])
    findings = report["reports"][0]["findings"]
    for f in findings:
        console.print(f"  [{'red' if f['severity'] == 'critical' else 'yellow'}]"
                      f"{f['severity']}[/] {f['message']}")
    if not any("lab-app" in f["message"] for f in findings):
        raise Failed("the diagnosis did not show lab-app down")

    step("2. find the cause", "The users' symptom is 502 on /app/: nginx's error log and "
                              "the app's unit tell why.")
    log = await tool(client, "fetch_logs", host=host, file="/var/log/nginx/error.log",
                     pattern="upstream", lines=3)
    for entry in log["entries"][-2:]:
        console.print(f"  [dim]{entry['line'][:160]}[/]")
    status = await tool(client, "get_service_status", host=host, service="lab-app",
                        log_lines=3)
    props = status["properties"]
    console.print(f"  lab-app.service: [bold red]{props['ActiveState']}[/] "
                  f"({props['SubState']}), {props['UnitFileState']}")

    step("3. propose a fix", "The host's own catalog says what may be done there; the "
                             "model proposes, with its evidence. Nothing runs yet.")
    actions = await tool(client, "list_pra_actions", host=host)
    restart = next(a for a in actions["actions"] if a["name"] == "restart_service")
    console.print(f"  restart_service may restart: {', '.join(restart['params']['unit'])}")
    proposal = await tool(
        client, "propose_pra_action", host=host, action="restart_service",
        params={"unit": "lab-app"},
        rationale="nginx answers 502 on /app/: its error log shows connection refused "
                  "from the upstream 127.0.0.1:8080, and lab-app.service (enabled) is "
                  f"{props['ActiveState']}. Restarting it should restore /app/.")
    show_json({k: proposal[k] for k in ("proposal_id", "state", "preview", "next_step")},
              "proposal")
    pid = proposal["proposal_id"]
    await tool(client, "execute_pra_action", refused=True, proposal_id=pid)

    step("4. the operator approves", "A human reads the proposal and signs it with the "
                                     "operator key (ssh-keygen -Y sign). No MCP tool can.")
    console.print(f"[magenta]operator $[/] mcp-linux-infra approvals approve {pid} --yes")
    done = await anyio.run_process([CLI, "approvals", "approve", pid, "--yes"], cwd=REPO,
                                   env=env, stdin=subprocess.DEVNULL, stdout=None,
                                   stderr=None, check=False)
    if done.returncode != 0:
        raise Failed(f"approvals approve exited {done.returncode}")

    step("5. execute", "The signed approval goes to the target, which checks the "
                       "signature, the host, the window and the one-time nonce itself.")
    result = await tool(client, "execute_pra_action", proposal_id=pid)
    show_json({k: result[k] for k in ("state", "outcome", "note", "steps")}, "result")
    await tool(client, "execute_pra_action", refused=True, proposal_id=pid)

    step("6. verify", "Read-only again: is the service up?")
    verified = await tool(client, "get_service_status", host=host, service="lab-app",
                          log_lines=2)
    console.print(f"  {verified['verdict']} since {verified['since']}")
    if not verified["active"]:
        raise Failed("lab-app is not active after the restart")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="lab-01")
    parser.add_argument("--mode", choices=["auto", "legacy"], default="legacy",
                        help="protocol era (legacy: what Claude Desktop speaks today)")
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("LINUX_MCP_KEY_SERVICES", KEY_SERVICES)
    state = Path(env.get("LINUX_MCP_STATE_DIR", "state"))
    server_log = (state if state.is_absolute() else REPO / state) / "demo-server.log"
    server_log.parent.mkdir(parents=True, exist_ok=True)
    step("0. the outage", "The lab's scenario stops lab-app (enabled); users get 502 on /app/.")
    lab_root(args.host, "systemctl restart lab-outage.service")
    console.print(f"  a user asks http://{args.host}/app/ -> {user_request(args.host)}")
    console.print(f"[dim]  (the server's own log, audit lines included: {server_log})[/]")
    try:
        anyio.run(session, args.host, env, args.mode, server_log)
    except Failed as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        return 1
    answer = user_request(args.host)
    console.print(f"  a user asks http://{args.host}/app/ -> {answer}")
    console.rule("[bold green]done")
    console.print("The audit trail: the server's audit log (LINUX_MCP_AUDIT_LOG, default "
                  "state/audit.jsonl); on the target, `journalctl -t pra-run` and "
                  "`-t mcp-wrapper`. Proposals: mcp-linux-infra approvals list.")
    return 0 if "HTTP 200" in answer else 1


def user_request(host: str) -> str:
    """What a user of /app/ gets, asked from inside the target (the lab is not routed)."""
    answer = lab_root(host, "curl -s -w 'HTTP %{http_code}' http://127.0.0.1/app/")
    body, _, code = answer.rpartition("HTTP ")
    if code == "200":
        return f"[bold green]HTTP 200[/] {body.strip()[:60]}"
    return f"[bold red]HTTP {code}[/]"

if __name__ == "__main__":
    sys.exit(main())
