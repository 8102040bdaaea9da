"""The one command-line entry point: `mcp-linux-infra SUBCOMMAND ...`."""

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mcp_linux_infra import __version__
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.settings import Settings

console = Console(stderr=True)
out = Console()

LAB_USERS = {"root": None, "mcp-reader": "mcp-reader.key", "pra-runner": "pra-exec.key"}


def _keys_init(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.keys import init_keys

    directory = args.dir or settings.keys_dir
    results = init_keys(directory, force=args.force,
                        ask_operator_passphrase=args.ask_operator_passphrase)
    table = Table(title=f"keys in {directory}")
    for col in ("key", "status", "fingerprint"):
        table.add_column(col)
    colour = {"created": "green", "kept": "yellow", "replaced": "red"}
    for r in results:
        table.add_row(str(r.path), f"[{colour[r.status]}]{r.status}[/]", r.fingerprint)
    out.print(table)
    kept = [r.name for r in results if r.status == "kept"]
    if kept:
        console.print(f"[yellow]kept existing key(s): {', '.join(kept)} "
                      "(pass --force to replace; old keys are kept as *.retired-*)[/]")
    return 0


def _lab_up(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.lab import manager

    with console.status("lab up") as spinner:
        started = manager.up(settings, args.hosts, status=lambda m: spinner.update(m))
    if started:
        console.print(f"[green]started {len(started)} target(s):[/] {', '.join(started)}")
    else:
        console.print("[yellow]the lab is already up: nothing to start[/]")
    return _lab_status(args, settings)


def _lab_status(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.lab import manager

    rows = manager.status(settings)
    if not rows:
        console.print("no lab targets (start some with: mcp-linux-infra lab up)")
        return 0
    table = Table(title="lab targets")
    for col in ("name", "ssh", "pid", "process", "systemd"):
        table.add_column(col)
    style = {"running": "green", "degraded": "yellow"}
    for r in rows:
        table.add_row(r.name, f"127.0.0.1:{r.port}", str(r.pid), r.process,
                      f"[{style.get(r.system, 'red')}]{r.system}[/]")
    out.print(table)
    paths = manager.LabPaths.of(settings)
    console.print(f"inventory: {paths.inventory}   known_hosts: {paths.known_hosts}   "
                  f"bootstrap key: {paths.key}")
    return 0


def _lab_ssh(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.lab.manager import LabPaths
    from mcp_linux_infra.lab.state import LabState
    from mcp_linux_infra.lab.target import ssh_argv

    paths = LabPaths.of(settings)
    state = LabState.load(paths.state)
    target = state.targets.get(args.host)
    if target is None:
        known = ", ".join(sorted(state.targets)) or "none (run: mcp-linux-infra lab up)"
        raise UserError(f"no lab target named {args.host!r}; targets: {known}")
    key_file = LAB_USERS[args.user]
    key = paths.key if key_file is None else settings.keys_dir / key_file
    if not key.exists():
        raise UserError(f"key {key} does not exist",
                        hint="run: mcp-linux-infra keys init (and deploy the target tier)")
    argv = ssh_argv(target.port, key, paths.known_hosts, user=args.user) + args.command
    sys.stdout.flush()
    os.execvp(argv[0], argv)
    return 0  # not reached


def _lab_down(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.lab import manager

    with console.status("stopping lab targets"):
        stopped = manager.down(settings)
    if stopped:
        console.print(f"[green]stopped and removed:[/] {', '.join(stopped)}")
    else:
        console.print("no lab targets were up: nothing to do")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-linux-infra",
        description="LLM diagnostics over SSH, enforced on the target; human-signed actions.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="group", required=True)

    keys = sub.add_parser("keys", help="client and operator keys").add_subparsers(
        dest="action", required=True)
    init = keys.add_parser("init", help="generate the three ed25519 key pairs (never overwrites)")
    init.add_argument("--dir", type=Path, help="key directory (default: settings keys_dir)")
    init.add_argument("--force", action="store_true",
                      help="replace existing keys (the old ones are kept as *.retired-*)")
    init.add_argument("--ask-operator-passphrase", action="store_true",
                      help="let ssh-keygen prompt for a passphrase on the operator key")
    init.set_defaults(func=_keys_init)

    lab = sub.add_parser("lab", help="disposable Debian 12 targets (systemd-nspawn)"
                         ).add_subparsers(dest="action", required=True)
    lab_up = lab.add_parser("up", help="build the image once, boot N targets, write inventory")
    lab_up.add_argument("--hosts", type=int, default=1, help="number of targets (default 1)")
    lab_up.set_defaults(func=_lab_up)
    lab.add_parser("status", help="list targets and systemd state").set_defaults(
        func=_lab_status)
    ssh = lab.add_parser("ssh", help="ssh to a target with strict host key checking")
    ssh.add_argument("host", help="target name, for example lab-01")
    ssh.add_argument("--user", choices=sorted(LAB_USERS), default="root")
    ssh.add_argument("command", nargs=argparse.REMAINDER, help="command (default: a shell)")
    ssh.set_defaults(func=_lab_ssh)
    lab.add_parser("down", help="stop every target the lab started; remove its files"
                   ).set_defaults(func=_lab_down)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args, Settings())
    except UserError as exc:
        console.print(f"[red]error:[/] {exc}")
        if exc.hint:
            console.print(f"[dim]hint:[/] {exc.hint}")
        return 2
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        return 130
