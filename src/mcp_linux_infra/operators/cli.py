"""`mcp-linux-infra operators enroll|add|list|revoke`: the administrator's side of operators.

Each command ends with what to deploy: the role's `mcp_infra_operators` list of the active
operators (stdout, YAML). Nothing here makes a target trust a key; running the role does.
Values from the database are shown through `display` (plain text, escapes visible).
"""

import argparse
import io
import time
from datetime import datetime
from pathlib import Path

from rich.table import Table

from mcp_linux_infra import cli_json, display
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.display import line, plain
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.operators.registry import (
    Registry,
    RegistryRefused,
    ansible_yaml,
    check_name,
    open_registry,
)
from mcp_linux_infra.settings import Settings

console = display.console(stderr=True)
out = display.console()
MAX_KEY_FILE = 16384


def _registry(settings: Settings) -> Registry:
    return open_registry(settings, Audit(settings.audit_log, io.StringIO()))


def _deploy(registry: Registry) -> None:
    console.print(plain("deploy this to the targets (the role's variable; it replaces the "
                        "whole list, including the default `operator`):"))
    print(ansible_yaml(registry.list(include_revoked=False)), end="")


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds")


def _key_argument(value: str) -> str:
    """FILE (an OpenSSH .pub) or the key line itself."""
    path = Path(value)
    if " " not in value.strip() and path.is_file():
        data = path.read_bytes()[:MAX_KEY_FILE]
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise UserError(f"{value}: not a public key file (not ASCII)") from None
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) != 1:
            raise UserError(f"{value}: a public key file holds exactly one key line")
        return lines[0]
    if " " not in value.strip():
        raise UserError(f"{value!r} is neither a file nor a key line `TYPE BASE64`")
    return value


def enroll_cmd(args: argparse.Namespace, settings: Settings) -> int:
    registry = _registry(settings)
    ttl = args.ttl or settings.console_enroll_seconds
    token = registry.new_enrollment(args.name, ttl)
    console.print(line("one-time enrollment link for ", args.name, " (give it to them alone; "
                       "it works once, until ", _when(time.time() + ttl), "):"))
    print(f"{settings.console_origin.rstrip('/')}/enroll/{token}")
    console.print(plain("the console shows the operator's key line and mcp_infra_operators "
                        "entry once they register a passkey; enrollment grants nothing until "
                        "that entry is deployed with the role (operators list prints the list)"))
    return 0


def add_cmd(args: argparse.Namespace, settings: Settings) -> int:
    registry = _registry(settings)
    operator = registry.add(args.name, _key_argument(args.public_key))
    console.print(line(("added", "green"), " ", operator.name, " (", operator.kind, ", ",
                       operator.fingerprint, ")"))
    _deploy(registry)
    return 0


def list_cmd(args: argparse.Namespace, settings: Settings) -> int:
    registry = _registry(settings)
    operators = registry.list(include_revoked=not args.active)
    if args.json:
        cli_json.emit({"operators": [
            {"name": o.name, "kind": o.kind, "public_key": o.public_key,
             "fingerprint": o.fingerprint, "rp_id": o.rp_id,
             "created_at": cli_json.iso(o.created_at), "revoked_at": cli_json.iso(o.revoked_at)}
            for o in operators]})
        return 0
    table = Table(title="operators")
    for col in ("name", "kind", "fingerprint", "rp id", "created", "revoked"):
        table.add_column(col)
    for o in operators:
        table.add_row(plain(o.name), plain(o.kind), plain(o.fingerprint), plain(o.rp_id or "-"),
                      plain(_when(o.created_at)),
                      plain(_when(o.revoked_at), "red" if o.revoked_at else ""))
    if operators:
        out.print(table)
    else:
        console.print(plain("no operators yet (operators enroll NAME, or operators add NAME)"))
    _deploy(registry)
    return 0


def revoke_cmd(args: argparse.Namespace, settings: Settings) -> int:
    registry = _registry(settings)
    operator = registry.revoke(args.name)
    console.print(line(("revoked", "red"), " ", operator.name, " (", operator.fingerprint,
                       "); targets trust the key until the role runs with the list below"))
    _deploy(registry)
    return 0


def _name(value: str) -> str:
    try:
        return check_name(value)
    except RegistryRefused as exc:
        raise argparse.ArgumentTypeError(exc.text) from None


def _seconds(value: str) -> int:
    if not value.isdigit() or not 60 <= int(value) <= 30 * 86400:
        raise argparse.ArgumentTypeError("seconds from 60 to 2592000")
    return int(value)


def add_parser(sub: argparse._SubParsersAction) -> None:
    operators = sub.add_parser("operators", help="operators' keys: enroll, add, list, revoke"
                               ).add_subparsers(dest="action", required=True)
    enroll = operators.add_parser("enroll", help="a one-time link to register a passkey")
    enroll.add_argument("name", type=_name, help="the operator's principal")
    enroll.add_argument("--ttl", type=_seconds, help="seconds the link works (default: "
                        "settings console_enroll_seconds)")
    enroll.set_defaults(func=enroll_cmd)
    add = operators.add_parser("add", help="register a CLI signer's public key")
    add.add_argument("name", type=_name, help="the operator's principal")
    add.add_argument("--public-key", required=True, metavar="FILE_OR_LINE",
                     help="an ssh-ed25519, sk-ssh-ed25519 or sk-ecdsa-sha2-nistp256 key")
    add.set_defaults(func=add_cmd)
    listing = operators.add_parser("list", help="operators, and the list to deploy")
    listing.add_argument("--active", action="store_true", help="hide revoked operators")
    listing.add_argument("--json", action="store_true",
                         help=cli_json.HELP + "; the list to deploy is not printed")
    listing.set_defaults(func=list_cmd)
    revoke = operators.add_parser("revoke", help="stop listing an operator's key")
    revoke.add_argument("name", type=_name, help="the operator's principal")
    revoke.set_defaults(func=revoke_cmd)
