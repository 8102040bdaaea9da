"""`mcp-linux-infra doctor [HOST|GROUP] [--json]`: exit 0 when no check failed (warnings
allowed), 1 when any did, 2 on bad usage (an unknown host or group, a bad setting)."""

from __future__ import annotations

import argparse
import math

from mcp_linux_infra import cli_json, display, progress
from mcp_linux_infra.display import plain
from mcp_linux_infra.doctor import report
from mcp_linux_infra.doctor.checks import CHECKS
from mcp_linux_infra.doctor.run import doctor
from mcp_linux_infra.inventory import load_inventory
from mcp_linux_infra.operators.registry import open_registry
from mcp_linux_infra.settings import Settings

console = display.console(stderr=True)
out = display.console()
DEFAULT_TIMEOUT_S = 10.0


def doctor_cmd(args: argparse.Namespace, settings: Settings) -> int:
    inventory = load_inventory(settings.inventory)
    hosts = inventory.resolve(args.target) if args.target else list(inventory.hosts.values())
    registry = open_registry(settings)
    try:
        operators = frozenset(o.name for o in registry.list(include_revoked=False))
    finally:
        registry.close()
    with progress.work("doctor", len(hosts), enabled=len(hosts) > 1 and not args.json) as work:
        reports = doctor(settings, hosts, operators, args.timeout,
                         done=lambda rep: work.advance(rep.host))
    if args.json:
        cli_json.emit(report.as_json(reports))
    else:
        out.print(report.table(reports))
        console.print(plain(report.summary(reports),
                            report.STYLE["fail" if report.exit_code(reports) else "ok"]))
    return report.exit_code(reports)


def _timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0.5 <= seconds <= 300:
        raise argparse.ArgumentTypeError("seconds from 0.5 to 300")
    return seconds


def add_parser(sub: argparse._SubParsersAction) -> None:
    checks = "; ".join(f"{c.name}: {c.asks}" for c in CHECKS)
    parser = sub.add_parser(
        "doctor", help="check hosts are ready: keys, versions, sessions, operators, clock",
        description=f"Per host, each check ok, warn or fail with why ({checks}). Exit codes: "
                    "0 no check failed, 1 a check failed, 2 bad usage.")
    parser.add_argument("target", nargs="?", help="a host or group (default: all)")
    parser.add_argument("--json", action="store_true", help=cli_json.HELP)
    parser.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds per connection and request (default {DEFAULT_TIMEOUT_S:g})")
    parser.set_defaults(func=doctor_cmd)
