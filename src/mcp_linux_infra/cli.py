"""The one command-line entry point: `mcp-linux-infra SUBCOMMAND ...`."""

import argparse
import logging
import os
import secrets
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from rich.table import Table
from rich.text import Text

from mcp_linux_infra import __version__, cli_examples, cli_json, deploy, display, progress
from mcp_linux_infra.approvals import cli as approvals_cli
from mcp_linux_infra.config_home import CONFIG_VAR, LAYOUT_VAR
from mcp_linux_infra.display import line, plain
from mcp_linux_infra.doctor import cli as doctor_cli
from mcp_linux_infra.errors import (
    EXIT_HOST,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_SYSTEM,
    EXIT_USAGE,
    UserError,
)
from mcp_linux_infra.operators import cli as operators_cli
from mcp_linux_infra.operators.registry import open_registry
from mcp_linux_infra.settings import Settings
from mcp_linux_infra.settings_sources import Resolved, resolve
from mcp_linux_infra.ssh.errors import SSHError
from mcp_linux_infra.target_names import ACTION_USER, READER_USER
from mcp_linux_infra.tokens import GROUP, NAME, SCOPES

# Every value shown is plain text through `display`: nothing from the inventory, a host, a
# subprocess or an exception is read as markup or reaches the terminal as a control.
console = display.console(stderr=True)
out = display.console()

LAB_USERS = {"root": None, READER_USER: "mcp-reader.key", ACTION_USER: "pra-exec.key"}


def _keys_init(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.keys import init_keys

    directory = args.dir or settings.keys_dir
    results = init_keys(directory, force=args.force,
                        ask_operator_passphrase=args.ask_operator_passphrase)
    table = Table(title=line("keys in ", str(directory)))
    for col in ("key", "status", "fingerprint"):
        table.add_column(col)
    colour = {"created": "green", "kept": "yellow", "replaced": "red"}
    for r in results:
        table.add_row(plain(r.path), plain(r.status, colour[r.status]), plain(r.fingerprint))
    out.print(table)
    kept = [r.name for r in results if r.status == "kept"]
    if kept:
        console.print(plain(f"kept existing key(s): {', '.join(kept)} (pass --force to "
                            "replace; old keys are kept as *.retired-*)", "yellow"))
    return 0


def _lab_up(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.lab import manager

    with progress.work("lab up") as work:
        def step(message: str) -> None:
            console.print(line(("·", "dim"), " ", message))
            work.step(message)

        started = manager.up(settings, args.hosts, status=step, ready=work.count,
                             behind=args.behind)
    if started:
        console.print(line((f"started {len(started)} target(s):", "green"), " ",
                           ", ".join(started)))
    else:
        console.print(plain("the lab is already up: nothing to start", "yellow"))
    return _lab_table(settings)


def _lab_status(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.lab import manager

    if not args.json:
        return _lab_table(settings)
    paths = manager.LabPaths.of(settings)
    cli_json.emit({"targets": [{"name": r.name, "address": "127.0.0.1", "port": r.port,
                                "pid": r.pid, "process": r.process, "systemd": r.system}
                               for r in manager.status(settings)],
                   "inventory": paths.inventory, "known_hosts": paths.known_hosts,
                   "bootstrap_key": paths.key})
    return 0


def _lab_table(settings: Settings) -> int:
    from mcp_linux_infra.lab import manager

    rows = manager.status(settings)
    if not rows:
        console.print(plain("no lab targets (start some with: mcp-linux-infra lab up)"))
        return 0
    table = Table(title="lab targets")
    for col in ("name", "ssh", "pid", "process", "systemd"):
        table.add_column(col)
    style = {"running": "green", "degraded": "yellow"}
    for r in rows:
        table.add_row(plain(r.name), plain(f"127.0.0.1:{r.port}"), plain(r.pid),
                      plain(r.process), plain(r.system, style.get(r.system, "red")))
    out.print(table)
    paths = manager.LabPaths.of(settings)
    console.print(line("inventory: ", str(paths.inventory), "   known_hosts: ",
                       str(paths.known_hosts), "   bootstrap key: ", str(paths.key)))
    return 0


def _lab_ssh(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.lab.manager import LabPaths
    from mcp_linux_infra.lab.state import LabState
    from mcp_linux_infra.lab.target import ssh_argv, way_in

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
    argv = (way_in(target, state.targets)
            + ssh_argv(target.port, key, paths.known_hosts, user=args.user) + args.command)
    sys.stdout.flush()
    os.execvp(argv[0], argv)
    return 0  # not reached


def _lab_down(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.lab import manager

    with console.status(plain("stopping lab targets")):
        stopped = manager.down(settings)
    if stopped:
        console.print(line(("stopped and removed:", "green"), " ", ", ".join(stopped)))
    else:
        console.print(plain("no lab targets were up: nothing to do"))
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.server.run import serve

    # An unwritable state directory is one line here, not an error inside the server's start.
    for directory in (settings.state_dir, settings.audit_log.parent):
        directory.mkdir(parents=True, exist_ok=True)
    return serve(settings, args.transport, args.host or settings.http_host,
                 args.port or settings.http_port)


def _console(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.console.app import serve

    return serve(settings, args.bind or settings.console_bind, args.port or settings.console_port)


def _hosts_list(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.inventory import load_inventory
    from mcp_linux_infra.ssh.hostkeys import KnownHosts, fingerprint
    from mcp_linux_infra.ssh.route import Routes

    inventory = load_inventory(settings.inventory)
    known = KnownHosts(settings.known_hosts)
    hosts = inventory.resolve(args.target) if args.target else list(inventory.hosts.values())
    routes = Routes(settings.ssh_config)
    if args.json:
        listed = []
        for h in hosts:
            entry = {"name": h.name, "groups": list(h.groups), "address": h.address,
                     "port": h.port}
            try:
                route = routes.resolve(h, settings.reader_user)
            except SSHError as exc:
                listed.append({**entry, "route": None, "error": str(exc), "host_keys": []})
                continue
            listed.append({**entry, "route": route.describe(), "notes": list(route.notes),
                           "host_keys": [{"type": n, "fingerprint": fingerprint(k)} for n, k
                                         in sorted(known.known(route.target).items())]})
        cli_json.emit({"hosts": listed})
        return 0
    table = Table(title=line("hosts in ", ", ".join(map(str, settings.inventory))))
    for col in ("name", "groups", "address", "route", "host key"):
        table.add_column(col)
    notes = []
    for host in hosts:
        try:
            route = routes.resolve(host, settings.reader_user)
        except SSHError as exc:
            table.add_row(plain(host.name), plain(",".join(host.groups)),
                          plain(f"{host.address}:{host.port}"), plain(str(exc), "red"), "")
            continue
        keys = known.known(route.target)
        key = plain(", ".join(f"{n} {fingerprint(k)}" for n, k in sorted(keys.items()))) \
            or plain("unknown (hosts trust)", "yellow")
        table.add_row(plain(host.name), plain(",".join(host.groups)),
                      plain(f"{route.target.address}:{route.target.port}"),
                      plain(route.describe()), key)
        notes += [f"{host.name}: {note}" for note in route.notes]
    out.print(table)
    console.print(line("known_hosts: ", str(settings.known_hosts), "   ssh config: ",
                       str(settings.ssh_config)))
    for note in notes:
        console.print(plain(note, "yellow"))
    return 0


def _trust_one(known, host, route, key, args: argparse.Namespace, settings: Settings) -> bool:
    """Record `key` as `route.target`'s after the operator's yes; False if it is not."""
    from mcp_linux_infra.ssh.hostkeys import fingerprint, host_id

    target = route.target
    label = (f"{host.name} ({host_id(target)})" if target.name == host.name
             else f"{host.name}'s jump host {target.name} ({host_id(target)})")
    recorded = known.known(target)
    if recorded.get(key.get_name()) == key:
        console.print(line(label, ": already trusted, ", key.get_name(), " ", fingerprint(key)))
        return True
    if recorded:
        differs = (f"{label}: presents {key.get_name()} {fingerprint(key)}, which "
                   "differs from the recorded key(s); refusing.")
        console.print(line((differs, "red"),
                           " If the host was reinstalled, verify out of band, remove the "
                           f"old entry (ssh-keygen -R '{host_id(target)}' -f "
                           f"{settings.known_hosts}) and run this again."))
        return False
    console.print(line(label, " presents ", key.get_name(), " ", (fingerprint(key), "bold")))
    if not args.yes and console.input(plain(
            "Does it match the host's own `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub`? "
            "Trust it? [y/N] ")).strip().lower() not in ("y", "yes"):
        console.print(plain("not trusted"))
        return False
    known.add(target, key)
    console.print(line(("trusted", "green"), ": recorded in ", str(settings.known_hosts)))
    return True


def _hosts_trust(args: argparse.Namespace, settings: Settings) -> int:
    """Each host's hops in order, jump hosts first: reaching the next hop needs the ones
    before it trusted (and the read tier's key accepted by their jump users)."""
    from mcp_linux_infra.inventory import load_inventory
    from mcp_linux_infra.ssh.hostkeys import KnownHosts
    from mcp_linux_infra.ssh.pool import Pool
    from mcp_linux_infra.ssh.route import Route

    known = KnownHosts(settings.known_hosts)
    pool = Pool(settings, known)
    hosts = load_inventory(settings.inventory).resolve(args.target)
    following = {host.name: 0 for host in hosts}  # each host's next hop to show
    failed = 0
    try:
        while following:  # a round: one hop per host, its key fetched before any question
            asks = []
            with progress.work("host keys", len(following), enabled=len(hosts) > 1) as work:
                for host in (h for h in hosts if h.name in following):
                    route = pool.route(host)
                    hops = [*(Route(jump.host, route.jumps[:i])
                              for i, jump in enumerate(route.jumps)), route]
                    hop = hops[following[host.name]]
                    asks.append((host, hop, pool.presented_key(host, hop)[1], len(hops)))
                    work.advance(host.name)
            for host, hop, key, count in asks:
                following[host.name] += 1
                if not _trust_one(known, host, hop, key, args, settings):
                    failed += 1
                    del following[host.name]
                elif following[host.name] == count:
                    del following[host.name]
    finally:
        pool.close()
    return 1 if failed else 0


def _tokens_new(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra import tokens

    groups = _known_groups(settings, args.groups) if args.groups else None
    token = secrets.token_urlsafe(32)
    tokens.add_token(settings.tokens_file, args.name, args.scopes, groups, token)
    console.print(line("token ", args.name, " (", ",".join(args.scopes),
                       f"; groups {','.join(groups)}" if groups else "", ") added to ",
                       str(settings.tokens_file), "; it is shown once: give it to the client "
                       "as 'Authorization: Bearer TOKEN'"))
    print(token)
    return 0


def _known_groups(settings: Settings, groups: list[str]) -> list[str]:
    """`groups`, each a group of the inventory, or a usage error naming the closest."""
    import difflib

    from mcp_linux_infra.inventory import load_inventory

    known = [g for g, members in load_inventory(settings.inventory).groups.items()
             if members and g not in ("all", "ungrouped")]
    for group in groups:
        if group not in known:
            close = difflib.get_close_matches(group, known, n=1, cutoff=0.6)
            raise UserError(f"no group {group!r} in the inventory" +
                            (f"; did you mean {close[0]}?" if close else ""),
                            hint=f"groups: {', '.join(sorted(known)) or 'none'}")
    return groups


def _tokens_list(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra import tokens

    used = tokens.read_last_used(settings.state_dir / tokens.LAST_USED)
    rows = [s.public(used.get(s.sha256)) for s in tokens.read_tokens(settings.tokens_file) or []]
    if args.json:
        cli_json.emit({"tokens": rows})
        return 0
    if not rows:
        console.print(line("no tokens in ", str(settings.tokens_file),
                           " (make one with: mcp-linux-infra tokens new NAME)"))
        return 0
    table = Table(title=line("tokens in ", str(settings.tokens_file)))
    for col in ("name", "scopes", "groups", "created", "last used"):
        table.add_column(col)
    for row in rows:
        table.add_row(plain(row["name"]), plain(",".join(row["scopes"])),
                      plain(",".join(row["groups"] or ["(every host)"])),
                      plain(row["created"]), plain(row["last_used"] or "never"))
    out.print(table)
    return 0


def _tokens_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra import tokens

    tokens.revoke_token(settings.tokens_file, args.name)
    console.print(line("revoked ", args.name, ": a running server refuses it from its next "
                       "request"))
    return 0


def _token_name(text: str) -> str:
    import re

    if not re.fullmatch(NAME, text):
        raise argparse.ArgumentTypeError(f"{text!r}: a token name is 1 to 64 of A-Z a-z 0-9 . _ -")
    return text


def _comma_list(choices: tuple[str, ...] | None, pattern: str):
    """An argument `A,B,C`: each part one of `choices`, or matching `pattern`; no repeats."""
    import re

    def parse(text: str) -> list[str]:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"{text!r}: expected A,B,...")
        for part in parts:
            if choices is not None and part not in choices:
                raise argparse.ArgumentTypeError(f"{part!r}: not one of {', '.join(choices)}")
            if not re.fullmatch(pattern, part):
                raise argparse.ArgumentTypeError(f"{part!r}: not a valid name")
        return list(dict.fromkeys(parts))
    return parse


# Settings whose value is a secret, or holds one (a webhook URL is its key): never shown.
SECRET_SETTINGS = ("webhooks", "database_url")


def _shown(name: str, value: object) -> object:
    if name in SECRET_SETTINGS and value is not None:  # unset: shown as unset
        return f"({len(value)} hidden)" if isinstance(value, list) else "(hidden)"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_shown(name, v) for v in value]
    return value


def _config_show(args: argparse.Namespace, resolved: Resolved) -> int:
    rows = {name: {"value": _shown(name, getattr(resolved.settings, name)),
                   "source": resolved.origins[name]} for name in Settings.model_fields}
    if args.json:
        cli_json.emit(rows)
        return 0
    table = Table(title="effective settings")
    for col in ("setting", "value", "source"):
        table.add_column(col)
    for name, row in rows.items():
        value = row["value"]
        table.add_row(plain(f"LINUX_MCP_{name.upper()}"),
                      plain(", ".join(value) if isinstance(value, list) else str(value)),
                      plain(row["source"], "dim" if row["source"] == "default" else "green"))
    out.print(table)
    return 0


_config_show.takes_resolution = True


def _completion(args: argparse.Namespace) -> int:
    """The shell's completion script for the whole tree; a path option completes files."""
    import shtab

    parser = build_parser()
    for _, each in cli_examples.walk(parser):
        for action in each._actions:
            if action.type is Path or action.metavar in ("FILE", "FILE_OR_LINE"):
                action.complete = shtab.FILE
    print(shtab.complete(parser, args.shell))
    return 0


_completion.needs_no_settings = True


def port(text: str) -> int:
    """A TCP port argument: 1 to 65535."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1 to 65535)")
    return int(text)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        first = message.splitlines()[0] if message else "bad arguments"
        self.exit(EXIT_USAGE, f"{self.prog}: error: {first} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mcp-linux-infra",
        description="LLM diagnostics over SSH, enforced on the target; human-signed actions.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (exit codes: docs/OPERATIONS.md)")
    parser.add_argument("--config", metavar="FILE",
                        help=f"the TOML config file (default: {CONFIG_VAR}, else "
                        "~/.config/mcp-linux-infra/config.toml)")
    parser.add_argument("--system", action="store_true",
                        help="the system service's layout: /etc/mcp-linux-infra and "
                        f"/var/lib/mcp-linux-infra ({LAYOUT_VAR}=system)")
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
    lab_up.add_argument("--behind", metavar="TARGET",
                        help="bind the new targets' SSH ports in lab target TARGET's network "
                        "namespace: reachable only through it (a bastion)")
    lab_up.set_defaults(func=_lab_up)
    lab_status = lab.add_parser("status", help="list targets and systemd state")
    lab_status.add_argument("--json", action="store_true", help=cli_json.HELP)
    lab_status.set_defaults(func=_lab_status)
    ssh = lab.add_parser("ssh", help="ssh to a target with strict host key checking")
    ssh.add_argument("host", help="target name, for example lab-01")
    ssh.add_argument("--user", choices=sorted(LAB_USERS), default="root",
                     help="the account (default root; mcp-reader and pra-runner with the "
                          "keys from keys init)")
    ssh.add_argument("command", nargs=argparse.REMAINDER, help="command (default: a shell)")
    ssh.set_defaults(func=_lab_ssh)
    lab.add_parser("down", help="stop every target the lab started; remove its files"
                   ).set_defaults(func=_lab_down)

    serve = sub.add_parser("serve", help="the MCP server (stdio for Claude Desktop, or http)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio",
                       help="stdio (default; a client starts the server) or http")
    serve.add_argument("--host", help="http bind address (default: settings http_host)")
    serve.add_argument("--port", type=port, help="http port (default: settings http_port)")
    serve.set_defaults(func=_serve)

    web = sub.add_parser("console", help="the approval console (web; passkey login and "
                         "approvals)")
    web.add_argument("--bind", help="bind address (default: settings console_bind)")
    web.add_argument("--port", type=port, help="port (default: settings console_port)")
    web.set_defaults(func=_console)

    hosts = sub.add_parser("hosts", help="inventory hosts and their host keys"
                           ).add_subparsers(dest="action", required=True)
    hosts_list = hosts.add_parser("list", help="hosts, groups, addresses, trusted host keys")
    hosts_list.add_argument("target", nargs="?", help="a host or group (default: all)")
    hosts_list.add_argument("--json", action="store_true", help=cli_json.HELP)
    hosts_list.set_defaults(func=_hosts_list)
    trust = hosts.add_parser("trust", help="show a host's key fingerprint and record it "
                             "(its jump hosts' first)")
    trust.add_argument("target", help="a host or group")
    trust.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    trust.set_defaults(func=_hosts_trust)

    approvals_cli.add_parser(sub, open_registry)
    operators_cli.add_parser(sub)
    doctor_cli.add_parser(sub)
    deploy.add_parser(sub)

    tokens = sub.add_parser("tokens", help="bearer tokens for serve --transport http (the "
                            "tokens file)").add_subparsers(dest="action", required=True)
    new = tokens.add_parser(
        "new", help="make a token: add its hash to the tokens file, print the token once")
    new.add_argument("name", type=_token_name, metavar="NAME",
                     help="who uses it, unique, e.g. claude-desktop")
    new.add_argument("--scopes", type=_comma_list(SCOPES, r".+"), default=["read"],
                     help=f"comma-separated, of {', '.join(SCOPES)} (default: read)")
    new.add_argument("--groups", type=_comma_list(None, GROUP),
                     help="limit it to these inventory groups, comma-separated: it sees and "
                     "touches only their hosts (default: every host)")
    new.set_defaults(func=_tokens_new)
    listing = tokens.add_parser(
        "list", help="name, scopes, groups, created and last used of every token")
    listing.add_argument("--json", action="store_true", help=cli_json.HELP)
    listing.set_defaults(func=_tokens_list)
    revoke = tokens.add_parser(
        "revoke", help="remove a token; a running server refuses it at once")
    revoke.add_argument("name", help="the token's name (tokens list)")
    revoke.set_defaults(func=_tokens_revoke)

    config = sub.add_parser("config", help="the effective settings and where each came from"
                            ).add_subparsers(dest="action", required=True)
    show = config.add_parser("show", help="every setting, its value (secrets hidden) and its "
                             "source: default, file, .env, environment")
    show.add_argument("--json", action="store_true", help=cli_json.HELP)
    show.set_defaults(func=_config_show)

    completion = sub.add_parser("completion", help="print the shell completion script")
    completion.add_argument("shell", choices=["bash", "zsh", "tcsh"], help="the shell")
    completion.set_defaults(func=_completion)
    cli_examples.apply(parser)
    return parser


def _message(label: tuple[str, str], text: str) -> Text:
    """An error or hint: its first line after the label, any further line (a subprocess's
    output in the message) marked as such below it."""
    first, _, rest = text.partition("\n")
    shown = line(label, " ", first)
    return Text("\n").join([shown, display.lines(rest)]) if rest else shown


def _os_error(exc: OSError) -> str:
    """An OSError in one line: the file it is about and the system's reason."""
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    reason = exc.strerror or str(exc)
    return f"{where}: {reason}" if where else reason


def _run(args: argparse.Namespace) -> int:
    if getattr(args.func, "needs_no_settings", False):
        return args.func(args)
    if not args.debug:  # paramiko logs its own tracebacks; its errors reach us as SSHError
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    if args.system:
        os.environ[LAYOUT_VAR] = "system"
    if args.config:
        os.environ[CONFIG_VAR] = str(Path(args.config).expanduser().absolute())
    resolved = resolve()
    if getattr(args.func, "takes_resolution", False):
        return args.func(args, resolved)
    return args.func(args, resolved.settings)


def _leaf(exc: BaseException) -> BaseException:
    """The one error inside task groups (the server runs in anyio's), else the error."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _report(exc: BaseException) -> int:
    """One line on stderr for an error, and its exit code."""
    if isinstance(exc, KeyboardInterrupt):
        console.print(plain("interrupted", "red"))
        return EXIT_INTERRUPTED
    if isinstance(exc, (UserError, SSHError)):
        hint = f" (hint: {exc.hint})" if exc.hint else ""
        text, code = f"{exc}{hint}", (exc.exit_code if isinstance(exc, UserError) else EXIT_HOST)
    elif isinstance(exc, OSError):
        text, code = _os_error(exc), EXIT_SYSTEM
    else:  # a bug: one line, the traceback with --debug
        text = (f"internal error: {type(exc).__name__}: {exc} (run with --debug for the "
                "traceback)")
        code = EXIT_INTERNAL
    console.print(_message(("error:", "red"), text), soft_wrap=True)
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - one line for any error
        if args.debug:
            traceback.print_exception(exc)
        return _report(_leaf(exc))
