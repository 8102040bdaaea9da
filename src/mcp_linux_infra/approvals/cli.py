"""`mcp-linux-infra approvals list|show|approve|reject`: the operator's side.

Approving shows what the operator needs to judge the proposal (rationale, preview, the
action's description), then builds the approval document and ends the screen with its
signed fields (host, action, params, window, approver, nonce) read back from the document's
own bytes, right before the prompt; only a yes signs, and it signs exactly that document.
A non-interactive run must say --yes.

Every value shown here comes from the model, a target or the database: it is shown through
`display` (plain text, non-printable characters as visible escapes, never markup).
"""

import argparse
import io
import json
import sys
from datetime import datetime
from typing import Any

from rich.console import Group
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mcp_linux_infra import display
from mcp_linux_infra.approvals.store import STATES, ApprovalStore, Proposal, open_approvals
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.display import line, lines, plain
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.settings import Settings, parse_ttl

console = display.console(stderr=True)
out = display.console()
STATE_STYLE = {"pending": "yellow", "approved": "cyan", "executing": "magenta",
               "succeeded": "green", "already-satisfied": "green", "failed": "red",
               "rejected": "dim", "expired": "dim"}
SIGNED_HEADER = "You sign this approval document:"
_BARE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@+,%")


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds")


def _word(value: Any) -> str:
    """A param name or value as one unambiguous word: bare when it is plain, else quoted."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text if text and set(text) <= _BARE else json.dumps(text, ensure_ascii=False)


def _params(params: dict[str, Any]) -> Text:
    return plain("  ".join(f"{_word(k)}={_word(v)}" for k, v in sorted(params.items()))
                 or "(none)")


def _state(state: str) -> Text:
    return plain(state, STATE_STYLE.get(state, "white"))


def _store(settings: Settings) -> ApprovalStore:
    """The server's store, with audit records to the same file (not echoed here)."""
    store = open_approvals(settings, Audit(settings.audit_log, io.StringIO()))
    store.expire_due()
    return store


def _preview(shown: dict[str, Any]) -> Text:
    """The preview: the command the read tier ran, its output (a target's text, one marked
    line per line), what it means (ours) and the prediction."""
    if not shown.get("available"):
        return plain(f"no preview: {shown.get('why', 'none was taken')}", "dim")
    output = shown.get("output") or ""
    parts = [line("`", shown.get("command", "?"), "` answered",
                  f" (exit {shown['exit_code']})" if "exit_code" in shown else "",
                  ":" if output else ": nothing")]
    if output:
        parts.append(lines(output))
    parts.append(plain(shown.get("explains", ""), "dim"))
    if shown.get("prediction"):
        parts.append(plain(shown["prediction"], "bold"))
    return Text("\n").join(parts)


def _panel(p: Proposal) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    info = p.action_info or {}
    rows = [("proposal", line(p.id, "  ", _state(p.state))), ("host", plain(p.host, "bold")),
            ("action", line((p.action, "bold"), "  (runs as ", info.get("runs_as", "?"), ")")),
            ("params", _params(p.params)), ("what it does", plain(info.get("description", ""))),
            ("rationale", plain(p.rationale)),
            ("proposed", line(_when(p.created_at), " by ", p.proposed_by or "?", " (trace ",
                              p.trace or "-", ")")),
            ("preview", _preview(p.preview or {}))]
    if p.approver:
        rows.append(("approved", line("by ", p.approver, ", valid ", _when(p.not_before),
                                      " .. ", _when(p.not_after))))
    if p.reason:
        rows.append(("reason", plain(p.reason)))
    if p.note:
        rows.append(("note", plain(p.note)))
    for label, value in rows:
        grid.add_row(label, value)
    return Panel(grid, title=line("proposal ", p.id), expand=False)


def _signed(fields: dict[str, Any]) -> Group:
    """The signed fields of an approval document, from the document itself; a value too
    long for a line wraps inside its column, so it can never start a line of its own."""
    start, end = fields["not_before"], fields["not_after"]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in (
            ("proposal", plain(fields["proposal"])), ("host", plain(fields["host"], "bold")),
            ("action", plain(fields["action"], "bold")), ("params", _params(fields["params"])),
            ("window", line(_when(start), " .. ", _when(end), f" ({end - start} s; unix ",
                            str(start), " .. ", str(end), ")")),
            ("approver", plain(fields["approver"])), ("nonce", plain(fields["nonce"]))):
        grid.add_row(label, value)
    return Group(plain(SIGNED_HEADER, "bold"), Padding(grid, (0, 0, 0, 2)))


def list_cmd(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    rows = store.find(args.state, args.host, args.limit)
    if not rows:
        console.print(line("no proposals", f" in state {args.state}" if args.state else ""))
        return 0
    table = Table(title="proposals (newest first)")
    for column in ("id", "state", "host", "action", "params", "proposed", "note"):
        table.add_column(column)
    for p in rows:
        table.add_row(plain(p.id), _state(p.state), plain(p.host), plain(p.action),
                      _params(p.params), plain(_when(p.created_at)), plain((p.note or "")[:60]))
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
        history.add_row(plain(_when(t["at"])), plain(t["from_state"] or "-"),
                        _state(t["to_state"]), plain(t["actor"]), plain(t["note"] or ""))
    out.print(history)
    if p.result:
        outcome = p.result.get("outcome") or p.result.get("refusal", {}).get("reason")
        out.print(line("target's answer: ", (str(outcome), "bold"), " ",
                       p.result.get("note") or ""))
    return 0


def _confirm(question: Text, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UserError("refusing to approve without a confirmation: stdin is not a terminal",
                        hint="run it in a terminal, or pass --yes after reading "
                             "`mcp-linux-infra approvals show ID`")
    return console.input(question).strip().lower() in ("y", "yes")


def approve_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.approvals.decide import draft, sign_draft

    store = _store(settings)
    p = store.get(args.id)
    if p.state != "pending":
        raise UserError(f"proposal {p.id} is {p.state}; only a pending proposal can be "
                        "approved", hint="approvals list --state pending")
    ttl = args.ttl or parse_ttl(settings.approval_ttl)
    out.print(_panel(p))
    if ttl > p.max_window:
        console.print(line((f"ttl {ttl} s is longer than ", "yellow"), (p.host, "yellow"),
                           (f" accepts; capped at {p.max_window} s", "yellow")))
        ttl = p.max_window
    document = draft(p, ttl, settings.approver)
    fields = document.fields
    out.print(_signed(fields))
    if not _confirm(line("Sign it as ", fields["approver"], "? [y/N] "), args.yes):
        console.print(plain("not approved; nothing was signed"))
        return 1
    p = sign_draft(store, document, settings.operator_key)
    console.print(line(("approved", "green"), f" {p.id} until {_when(p.not_after)}; the model "
                       f"may now call execute_pra_action(proposal_id='{p.id}')"))
    if args.execute:
        return _execute(store, p, settings)
    return 0


def _execute(store: ApprovalStore, p: Proposal, settings: Settings) -> int:
    from mcp_linux_infra.approvals.executor import Executor
    from mcp_linux_infra.inventory import load_inventory
    from mcp_linux_infra.ssh.pool import Pool

    host = load_inventory(settings.inventory).resolve(p.host)[0]
    pool = Pool(settings)
    try:
        p = Executor(store, pool, f"operator:{settings.approver}",
                     answer_floor=settings.command_timeout).execute(p.id, host)
    finally:
        pool.close()
    console.print(line("executed: ", _state(p.state), " ", p.note or ""))
    return 0 if p.state in ("succeeded", "already-satisfied") else 1


def reject_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_linux_infra.approvals.decide import reject

    p = reject(_store(settings), args.id, settings.approver, args.reason)
    console.print(line("rejected ", p.id, ": ", args.reason))
    return 0


def _reason(text: str) -> str:
    """A reject reason is kept for people (and the model) to read: printable, one line."""
    why = display.free_text_refusal("the reason", text)
    if why is not None:
        raise argparse.ArgumentTypeError(why)
    return text


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
    reject.add_argument("--reason", required=True, type=_reason,
                        help="told to the model (printable text on one line)")
    reject.set_defaults(func=reject_cmd)
