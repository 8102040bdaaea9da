"""`mcp-linux-infra approvals list|show|approve|reject`: the operator's side.

Approving shows everything the signature will cover (host, action, params) and what the
operator needs to judge it (rationale, preview, the action's description), asks, and only
then signs with the operator key. A non-interactive run must say --yes.
"""

import argparse
import io
import sys
from datetime import datetime

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mcp_linux_infra.approvals.document import parse_ttl
from mcp_linux_infra.approvals.store import STATES, ApprovalStore, Proposal
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.settings import Settings

console = Console(stderr=True)
out = Console()
STATE_STYLE = {"pending": "yellow", "approved": "cyan", "executing": "magenta",
               "succeeded": "green", "already-satisfied": "green", "failed": "red",
               "rejected": "dim", "expired": "dim"}


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds")


def _params(p: Proposal) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(p.params.items())) or "(none)"


def _state(state: str) -> str:
    return f"[{STATE_STYLE.get(state, 'white')}]{state}[/]"


def _store(settings: Settings) -> ApprovalStore:
    """The server's store, with audit records to the same file (not echoed here)."""
    from mcp_linux_infra.server.state import open_approvals

    store = open_approvals(settings, Audit(settings.audit_log, io.StringIO()))
    store.expire_due()
    return store


def _panel(p: Proposal) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    info = p.action_info or {}
    rows = [("proposal", f"{p.id}  {_state(p.state)}"), ("host", f"[bold]{p.host}[/]"),
            ("action", f"[bold]{p.action}[/]  (runs as {info.get('runs_as', '?')})"),
            ("params", f"[bold]{_params(p)}[/]"), ("what it does", info.get("description", "")),
            ("rationale", p.rationale),
            ("proposed", f"{_when(p.created_at)} by {p.proposed_by or '?'} (trace {p.trace})")]
    shown = p.preview or {}
    if shown.get("available"):
        preview = f"`{shown['command']}` -> {shown.get('output') or '(no output)'}"
        preview += f"\n[dim]{shown.get('explains', '')}[/]"
        if shown.get("prediction"):
            preview += f"\n[bold]{shown['prediction']}[/]"
    else:
        preview = f"[dim]no preview: {shown.get('why', 'none was taken')}[/]"
    rows.append(("preview", preview))
    if p.approver:
        window = f"{_when(p.not_before)} .. {_when(p.not_after)}"
        rows.append(("approved", f"by {p.approver}, valid {window}"))
    if p.reason:
        rows.append(("reason", p.reason))
    if p.note:
        rows.append(("note", p.note))
    for label, value in rows:
        grid.add_row(label, value)
    return Panel(grid, title=f"proposal {p.id}", expand=False)


def list_cmd(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    rows = store.find(args.state, args.host, args.limit)
    if not rows:
        console.print("no proposals" + (f" in state {args.state}" if args.state else ""))
        return 0
    table = Table(title="proposals (newest first)")
    for column in ("id", "state", "host", "action", "params", "proposed", "note"):
        table.add_column(column)
    for p in rows:
        table.add_row(p.id, _state(p.state), p.host, p.action, _params(p), _when(p.created_at),
                      (p.note or "")[:60])
    out.print(table)
    return 0


def show_cmd(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    p = store.get(args.id)
    out.print(_panel(p))
    history = Table(title="history")
    for column in ("at", "from", "to", "by", "note"):
        history.add_column(column)
    for t in store.transitions(p.id):
        history.add_row(_when(t["at"]), t["from_state"] or "-", _state(t["to_state"]),
                        t["actor"], t["note"] or "")
    out.print(history)
    if p.result:
        outcome = p.result.get("outcome") or p.result.get("refusal", {}).get("reason")
        out.print(f"target's answer: [bold]{outcome}[/] {p.result.get('note') or ''}")
    return 0


def _confirm(question: str, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UserError("refusing to approve without a confirmation: stdin is not a terminal",
                        hint="run it in a terminal, or pass --yes after reading "
                             "`mcp-linux-infra approvals show ID`")
    return console.input(Text.from_markup(question)).strip().lower() in ("y", "yes")


def approve_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.approvals.decide import approve

    store = _store(settings)
    p = store.get(args.id)
    if p.state != "pending":
        raise UserError(f"proposal {p.id} is {p.state}; only a pending proposal can be "
                        "approved", hint="approvals list --state pending")
    ttl = args.ttl or parse_ttl(settings.approval_ttl)
    out.print(_panel(p))
    if ttl > p.max_window:
        console.print(f"[yellow]ttl {ttl} s is longer than {p.host} accepts; capped at "
                      f"{p.max_window} s[/]")
        ttl = p.max_window
    question = (f"Sign [bold]{p.action} {_params(p)}[/] on [bold]{p.host}[/] as "
                f"{settings.approver}, valid {ttl} s? \\[y/N] ")
    if not _confirm(question, args.yes):
        console.print("not approved; nothing was signed")
        return 1
    p = approve(store, p, ttl, settings.approver, settings.operator_key)
    console.print(f"[green]approved[/] {p.id} until {_when(p.not_after)}; the model may now "
                  f"call execute_pra_action(proposal_id='{p.id}')")
    if args.execute:
        return _execute(store, p, settings)
    return 0


def _execute(store: ApprovalStore, p: Proposal, settings: Settings) -> int:
    from mcp_linux_infra.approvals.execute import Executor
    from mcp_linux_infra.inventory import load_inventory
    from mcp_linux_infra.ssh.pool import Pool

    host = load_inventory(settings.inventory).resolve(p.host)[0]
    pool = Pool(settings)
    try:
        p = Executor(store, pool, f"operator:{settings.approver}",
                     answer_floor=settings.command_timeout).execute(p.id, host)
    finally:
        pool.close()
    console.print(f"executed: {_state(p.state)} {p.note or ''}")
    return 0 if p.state in ("succeeded", "already-satisfied") else 1


def reject_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.approvals.decide import reject

    p = reject(_store(settings), args.id, settings.approver, args.reason)
    console.print(f"rejected {p.id}: {args.reason}")
    return 0


def _ttl(text: str) -> int:
    try:
        return parse_ttl(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    approvals = sub.add_parser("approvals", help="proposals: list, show, approve (sign), reject"
                               ).add_subparsers(dest="action", required=True)
    listing = approvals.add_parser("list", help="proposals, newest first")
    listing.add_argument("--state", choices=STATES)
    listing.add_argument("--host")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=list_cmd)
    show = approvals.add_parser("show", help="one proposal, its preview and history")
    show.add_argument("id")
    show.set_defaults(func=show_cmd)
    approve = approvals.add_parser("approve", help="show, confirm, sign with the operator key")
    approve.add_argument("id")
    approve.add_argument("--ttl", type=_ttl, help="how long the approval is valid (900s, 15m, 1h; "
                                       "default: settings approval_ttl)")
    approve.add_argument("--execute", action="store_true",
                         help="execute it right away from here")
    approve.add_argument("--yes", action="store_true",
                         help="do not ask (needed when stdin is not a terminal)")
    approve.set_defaults(func=approve_cmd)
    reject = approvals.add_parser("reject", help="refuse a pending (or unused approved) one")
    reject.add_argument("id")
    reject.add_argument("--reason", required=True, help="told to the model")
    reject.set_defaults(func=reject_cmd)
