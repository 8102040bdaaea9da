"""`mcp-linux-infra deploy [HOST|GROUP] [--check] [--json]`: the target tier from this
installed copy, no clone needed.

It runs this environment's ansible-playbook over the collection mcp_linux_infra.target that
the wheel installs beside the package (site-packages/ansible_collections/, assembled at build
time by setup.py; a clone's ansible/ when run from one), on the configured inventory, with the
configured keys and strict host keys against the configured known_hosts. Ansible's full output
goes to STATE_DIR/deploy.log; the screen gets one line per host and task result (on a TTY), a
recap, and one line for a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

import mcp_linux_infra
from mcp_linux_infra import display, progress
from mcp_linux_infra.display import line, plain
from mcp_linux_infra.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_HOST, EXIT_SYSTEM, UserError
from mcp_linux_infra.inventory import load_inventory
from mcp_linux_infra.settings import Settings

console = display.console(stderr=True)
out = display.console()

COLLECTION = ("ansible_collections", "mcp_linux_infra", "target")
PLAYBOOK = "deploy-mcp-infra.yml"
PUBLIC_KEYS = ("mcp-reader.key.pub", "pra-exec.key.pub", "operator.key.pub")
RESULT_RE = re.compile(r"^(ok|changed|skipping|fatal|failed): \[([^\]]+)\](.*)$")
RECAP_RE = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)"
                      r"\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)")
RECAP_FIELDS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
STYLE = {"ok": "green", "changed": "yellow", "skipping": "dim", "fatal": "red", "failed": "red"}
# ansible-playbook's exit codes: bit flags 2 (a host failed) and 4 (a host unreachable), but 4
# is also a parse error and 1 any error before a play (a variable file that is not there), so
# the recap decides.


def collection_dir() -> Path:
    """The installed collection (beside the package in a wheel's site-packages), else the
    ansible/ directory of the clone this copy runs from."""
    package = Path(mcp_linux_infra.__file__).resolve().parent
    for candidate in (package.parent.joinpath(*COLLECTION), package.parents[1] / "ansible"):
        if (candidate / "galaxy.yml").is_file():
            return candidate
    raise UserError("the Ansible collection mcp_linux_infra.target is not installed with this "
                    f"copy (looked beside {package})", hint="reinstall from the wheel",
                    exit_code=EXIT_SYSTEM)


def ansible_playbook() -> list[str]:
    """ansible-playbook of this environment (ansible-core is a dependency): the same
    interpreter, so it finds the same collection and libraries."""
    return [sys.executable, "-m", "ansible", "playbook"]


def command(settings: Settings, target: str | None, check: bool,
            extra_vars: list[str]) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of the deploy (no shell: every value is one argument)."""
    collection = collection_dir()
    inventories = [p for p in settings.inventory or [] if p.is_file()]
    if not inventories:
        raise UserError("no inventory file: " + ", ".join(map(str, settings.inventory or [])),
                        hint="write one (like the collection's inventory/example.ini) or run "
                        "`lab up`",
                        exit_code=EXIT_CONFIG)
    missing = [name for name in PUBLIC_KEYS if not (settings.keys_dir / name).is_file()]
    if missing:
        raise UserError(f"no {', '.join(missing)} in {settings.keys_dir}",
                        hint="mcp-linux-infra keys init", exit_code=EXIT_CONFIG)
    if target:
        load_inventory(settings.inventory).resolve(target)  # an unknown name: one line, exit 2
    argv = ansible_playbook()
    for path in inventories:
        argv += ["-i", str(path)]
    argv += [str(collection / "playbooks" / PLAYBOOK),
             "-e", json.dumps({"mcp_infra_keys_dir": str(settings.keys_dir)})]
    for value in extra_vars:
        argv += ["-e", value]
    if target:
        argv += ["--limit", target]
    if check:
        argv += ["--check", "--diff"]
    known_hosts = settings.known_hosts
    env = dict(os.environ,
               # the collection's ansible.cfg (host key checking, pipelining, no retry files),
               # never one from the working directory or the home directory
               ANSIBLE_CONFIG=str(collection / "ansible.cfg"),
               # an inventory's own ansible_ssh_common_args (the lab's) take precedence
               ANSIBLE_SSH_COMMON_ARGS=shlex.join(["-o", "StrictHostKeyChecking=yes",
                                                   "-o", f"UserKnownHostsFile={known_hosts}"]),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_LOCALHOST_WARNING="False",
               PYTHONUNBUFFERED="1")
    if collection.parents[1].name == COLLECTION[0]:  # installed: ansible_collections/ns/name
        env["ANSIBLE_COLLECTIONS_PATH"] = str(collection.parents[2])
    return argv, env


@dataclass
class Outcome:
    """What the run's output said: the recap per host, the first failed task (host, task,
    message) and the first error Ansible printed (before any play, or about a task)."""

    recap: dict[str, dict[str, int]] = field(default_factory=dict)
    failed_task: str | None = None
    error: str | None = None

    @property
    def failure(self) -> str | None:
        return self.failed_task or self.error


def _failure(host: str, task: str, rest: str) -> str:
    """`fatal: [h]: FAILED! => {...}` -> the host, the task and Ansible's message."""
    detail = rest.partition("=>")[2].strip()
    try:
        message = json.loads(detail).get("msg", detail)
    except (ValueError, AttributeError):
        message = detail or rest.strip(": ")
    return f"{host}: {task}: {str(message).splitlines()[0] if message else 'failed'}"


def follow(lines, show: bool, log) -> Outcome:
    """Read ansible-playbook's output: log it, show one line per host and task result."""
    outcome, task, in_recap, error_next = Outcome(), "", False, False
    for raw in lines:
        log.write(raw)
        text = raw.rstrip("\n")
        if error_next:  # Ansible's error says what it could not do on its second line
            error_next = False
            if text.strip() and not text.startswith(("Origin:", "[")) \
                    and not RESULT_RE.match(text):
                outcome.error += " " + text.strip()
                continue
        if text.startswith(("TASK [", "RUNNING HANDLER [")):
            task = text.split("[", 1)[1].rsplit("]", 1)[0]
        elif text.startswith("PLAY RECAP"):
            in_recap = True
        elif in_recap and (match := RECAP_RE.match(text)):
            outcome.recap[match.group(1)] = dict(zip(RECAP_FIELDS, map(int, match.groups()[1:])))
        elif text.startswith(("ERROR!", "[ERROR]:")) and outcome.error is None:
            outcome.error = text.split(":", 1)[1].strip() if text.startswith("[") else \
                text.removeprefix("ERROR!").strip()
            error_next = True
        elif match := RESULT_RE.match(text):
            status, host, rest = match.groups()
            if status in ("fatal", "failed") and outcome.failed_task is None \
                    and "...ignoring" not in rest:
                outcome.failed_task = _failure(host, task, rest)
            if show:
                console.print(line((f"{status:<8}", STYLE[status]), " ", (host, "bold"),
                                   "  ", task), soft_wrap=True)
    return outcome


def recap_table(recap: dict[str, dict[str, int]]) -> Table:
    table = Table(title="deploy")
    table.add_column("host")
    for name in RECAP_FIELDS[:5]:
        table.add_column(name, justify="right")
    for host, counts in sorted(recap.items()):
        table.add_row(plain(host), *(plain(counts[n]) for n in RECAP_FIELDS[:5]))
    return table


def deploy_cmd(args: argparse.Namespace, settings: Settings) -> int:
    argv, env = command(settings, args.target, args.check, args.extra_vars or [])
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.state_dir / "deploy.log"
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as log:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, env=env, cwd="/")
        except OSError as exc:
            raise UserError(f"cannot run ansible-playbook: {exc}", exit_code=EXIT_SYSTEM) from None
        with proc:
            outcome = follow(proc.stdout, show=progress.shown(args.json), log=log)
    code = 0 if proc.returncode == 0 else exit_code(proc.returncode, outcome)
    if args.json:
        print(json.dumps({"check": args.check, "exit_code": code, "log": str(log_path),
                          "failure": outcome.failure, "hosts": outcome.recap}, indent=2))
    elif outcome.recap:
        out.print(recap_table(outcome.recap))
    if code == 0:
        return 0
    reason = outcome.failure or f"ansible-playbook exited with {proc.returncode}"
    raise UserError(f"deploy failed: {reason}", hint=f"full output in {log_path}",
                    exit_code=code)


def exit_code(code: int, outcome: Outcome) -> int:
    """Ours (docs/OPERATIONS.md, "Exit codes") for a failed run: a host unreachable 5, a
    host failed 1, an inventory or variables Ansible could not read (no play ran) 3."""
    if any(counts["unreachable"] for counts in outcome.recap.values()):
        return EXIT_HOST
    if not outcome.recap:  # no play ran: what Ansible was given is wrong
        return EXIT_CONFIG
    return EXIT_FAILED


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "deploy", help="install or update the target tier on hosts (Ansible, from this copy)",
        description="Run the installed collection's deploy-mcp-infra.yml with this copy's\n"
                    "ansible-playbook on the configured inventory, keys and known_hosts (strict\n"
                    "host keys); Ansible's full output goes to STATE_DIR/deploy.log.\n"
                    "Exit codes: 0 deployed, 1 a host failed, 2 bad usage, 3 a bad inventory\n"
                    "or setting, 4 a file that cannot be written, 5 a host unreachable.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", nargs="?", help="a host or group (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="dry run: show what would change (--check --diff)")
    parser.add_argument("-e", "--extra-vars", action="append", metavar="VARS",
                        help="role variables, as ansible-playbook -e (KEY=VALUE, JSON or "
                        "@FILE); repeatable")
    parser.add_argument("--json", action="store_true",
                        help="the recap per host as JSON on stdout, for scripts")
    parser.set_defaults(func=deploy_cmd)
