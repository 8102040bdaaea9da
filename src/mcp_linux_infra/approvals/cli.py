"""`mcp-linux-infra approvals list|show|approve|reject`: the operator's side.

Approving shows what the operator needs to judge the proposal (rationale, preview, the
action's description, the approvals so far), then takes the proposal's one approval
document (every approver signs the same bytes) and ends the screen with its signed fields
(id, each step's host, action, params and nonce, the window, the approvals asked for) read
back from the document's own bytes, right before the prompt; only a yes signs, with the
operator's own key (a key file, an ssh-agent key or an sk-ed25519 security key, through
ssh-keygen), and it signs exactly that document, as that operator (`--as NAME`). A
non-interactive run must say --yes.

Every value shown here comes from the model, a target or the database: it is shown through
`display` (plain text, non-printable characters as visible escapes, never markup).
"""

import argparse
import io
import json
import re
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mcp_linux_infra import cli_json, display
from mcp_linux_infra.approvals.store import (
    STATES,
    ApprovalStore,
    Operators,
    Proposal,
    open_approvals,
)
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.display import line, lines, plain
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.settings import PRINCIPAL_PATTERN, Settings, parse_ttl

OpenOperators = Callable[[Settings, Audit], Operators]
console = display.console(stderr=True)
out = display.console()
STATE_STYLE = {"pending": "yellow", "approved": "cyan", "executing": "magenta",
               "succeeded": "green", "already-satisfied": "green", "failed": "red",
               "rejected": "dim", "expired": "dim"}
SIGNED_HEADER = "You sign this approval document:"
PRINCIPAL = re.compile(PRINCIPAL_PATTERN.removesuffix("$") + r"\Z")
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


def _store(settings: Settings, open_operators: OpenOperators | None = None) -> ApprovalStore:
    """The server's store, with audit records to the same file (not echoed here), and the
    operators registry where approvals are added."""
    audit = Audit(settings.audit_log, io.StringIO())
    operators = None if open_operators is None else open_operators(settings, audit)
    store = open_approvals(settings, audit, operators)
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
    rows.append(("approvals", _approvals(p)))
    if p.not_after is not None:
        rows.append(("window", line(_when(p.not_before), " .. ", _when(p.not_after))))
    if p.reason:
        rows.append(("reason", plain(p.reason)))
    if p.note:
        rows.append(("note", plain(p.note)))
    for label, value in rows:
        grid.add_row(label, value)
    return Panel(grid, title=line("proposal ", p.id), expand=False)


def _approvals(p: Proposal) -> Text:
    """"N of M approvals", then who, how and when."""
    who = [line(a["principal"], f" ({a['method']}, {a['key_type']}, ", _when(a["at"]), ")")
           for a in p.approvals]
    return Text(", ").join([plain(p.count(), "bold"), *who]) if who else plain(p.count())


def _signed(fields: dict[str, Any]) -> Group:
    """The signed fields of an approval document, from the document itself; a value too
    long for a line wraps inside its column, so it can never start a line of its own.
    A plan's steps are numbered (step_1_host, ...)."""
    start, end = fields["not_before"], fields["not_after"]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows = [("proposal", plain(fields["id"]))]
    steps = fields["steps"]
    for index, step in enumerate(steps, 1):
        prefix = "" if len(steps) == 1 else f"step_{index}_"
        rows += [(prefix + "host", plain(step["host"], "bold")),
                 (prefix + "action", plain(step["action"], "bold")),
                 (prefix + "params", _params(step["params"])),
                 (prefix + "nonce", plain(step["nonce"]))]
    rows += [("window", line(_when(start), " .. ", _when(end), f" ({end - start} s; unix ",
                             str(start), " .. ", str(end), ")")),
             ("approvals", plain(f"{fields['approvals']} distinct operator"
                                 + ("s" if fields["approvals"] != 1 else "")))]
    for label, value in rows:
        grid.add_row(label, value)
    return Group(plain(SIGNED_HEADER, "bold"), Padding(grid, (0, 0, 0, 2)))


TIMES = ("created_at", "updated_at", "sent_at", "not_before", "not_after")


def as_json(p: Proposal) -> dict[str, Any]:
    """A proposal for `--json`: what tools report, its times in ISO 8601."""
    data = p.public()
    data.update({name: cli_json.iso(data[name]) for name in TIMES})
    data["approvals"] = [{**a, "at": cli_json.iso(a["at"])} for a in data["approvals"]]
    return data


def list_cmd(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    rows = store.find(args.state, args.host, args.limit)
    if args.json:
        cli_json.emit({"proposals": [as_json(p) for p in rows]})
        return 0
    if not rows:
        console.print(line("no proposals", f" in state {args.state}" if args.state else ""))
        return 0
    table = Table(title="proposals (newest first)")
    table.add_column("id", no_wrap=True, min_width=9)  # never cut: the operator types it
    for column in ("state", "host", "action", "params", "approvals", "proposed", "note"):
        table.add_column(column)
    for p in rows:
        table.add_row(plain(p.id), _state(p.state), plain(p.host), plain(p.action),
                      _params(p.params), plain(f"{len(p.approvals)}/{p.required}"),
                      plain(_when(p.created_at)), plain((p.note or "")[:60]))
    out.print(table)
    return 0


def show_cmd(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    p = store.get(args.id)
    if args.json:
        cli_json.emit({"proposal": as_json(p), "history": [
            {**t, "at": cli_json.iso(t["at"])} for t in store.history(p.id)]})
        return 0
    out.print(_panel(p))
    history = Table(title="history")
    for column in ("at", "event", "state", "by", "note"):
        history.add_column(column)
    for t in store.history(p.id):
        history.add_row(plain(_when(t["at"])), plain(t["event"]), _state(t["to_state"]),
                        plain(t["actor"]), plain(t["note"] or ""))
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
    from mcp_linux_infra.approvals.decide import check_signer, draft, sign_draft

    store = _store(settings, args.open_operators)
    principal = args.principal or settings.approver
    key = args.key or settings.operator_key
    p = store.get(args.id)
    if p.state != "pending":
        raise UserError(f"proposal {p.id} is {p.state}; only a pending proposal can be "
                        "approved", hint="approvals list --state pending")
    check_signer(store, principal, key)
    ttl = args.ttl or parse_ttl(settings.approval_ttl)
    if ttl > p.max_window:
        console.print(line((f"ttl {ttl} s is longer than ", "yellow"), (p.host, "yellow"),
                           (f" accepts; capped at {p.max_window} s", "yellow")))
        ttl = p.max_window
    document = draft(store, p.id, ttl)
    p = store.get(p.id)
    if principal in p.principals:
        raise UserError(f"already_approved: {principal} already approved {p.id} "
                        f"({p.count()}); another operator must add the next",
                        hint=f"mcp-linux-infra approvals approve {p.id} --as OTHER-OPERATOR")
    out.print(_panel(p))
    out.print(_signed(document.fields))
    if not _confirm(line("Sign it as ", principal, "? [y/N] "), args.yes):
        console.print(plain("not approved; nothing was signed"))
        return 1
    p = sign_draft(store, document, principal, key)
    if p.state != "approved":
        console.print(line(("approval added", "green"), f" to {p.id}: {p.count()}; another "
                           f"operator must approve it too: mcp-linux-infra approvals approve "
                           f"{p.id} --as OTHER-OPERATOR",
                           "; not executed" if args.execute else ""))
        return 0
    console.print(line(("approved", "green"), f" {p.id} ({p.count()}) until "
                       f"{_when(p.not_after)}; the model may now call "
                       f"execute_pra_action(proposal_id='{p.id}')"))
    if args.execute:
        return _execute(store, p, settings, principal)
    return 0


def _execute(store: ApprovalStore, p: Proposal, settings: Settings, principal: str) -> int:
    from mcp_linux_infra.approvals.executor import Executor
    from mcp_linux_infra.inventory import load_inventory
    from mcp_linux_infra.ssh.pool import Pool

    host = load_inventory(settings.inventory).resolve(p.host)[0]
    pool = Pool(settings)
    try:
        p = Executor(store, pool, f"operator:{principal}",
                     answer_floor=settings.command_timeout).execute(p.id, host)
    finally:
        pool.close()
    console.print(line("executed: ", _state(p.state), " ", p.note or ""))
    return 0 if p.state in ("succeeded", "already-satisfied") else 1


def reject_cmd(args: argparse.Namespace, settings: Settings) -> int:
    p = _store(settings).reject(args.id, args.principal or settings.approver, args.reason)
    console.print(line("rejected ", p.id, ": ", args.reason))
    return 0


def _reason(text: str) -> str:
    """A reject reason is kept for people (and the model) to read: printable, one line."""
    why = display.free_text_refusal("the reason", text)
    if why is not None:
        raise argparse.ArgumentTypeError(why)
    return text


def _principal(text: str) -> str:
    if not PRINCIPAL.match(text):
        raise argparse.ArgumentTypeError("an operator name is letters, digits and ._@+- "
                                         "(at most 128), starting with a letter or digit")
    return text


def _ttl(text: str) -> int:
    try:
        return parse_ttl(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


ID_HELP = "the proposal's id (approvals list shows them)"


def add_parser(sub: argparse._SubParsersAction, open_operators: OpenOperators) -> None:
    """`open_operators(settings, audit)`: the operators registry (a room above this one,
    handed in by the entry point)."""
    approvals = sub.add_parser("approvals", help="proposals: list, show, approve (sign), reject"
                               ).add_subparsers(dest="action", required=True)
    listing = approvals.add_parser("list", help="proposals, newest first")
    listing.add_argument("--state", choices=STATES, help="only proposals in this state")
    listing.add_argument("--host", help="only proposals for this host")
    listing.add_argument("--limit", type=int, default=50,
                         help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true", help=cli_json.HELP)
    listing.set_defaults(func=list_cmd)
    show = approvals.add_parser("show", help="one proposal, its preview and history")
    show.add_argument("id", help=ID_HELP)
    show.add_argument("--json", action="store_true", help=cli_json.HELP)
    show.set_defaults(func=show_cmd)
    approve = approvals.add_parser("approve", help="show, confirm, sign with the operator's "
                                   "own key, as that operator")
    approve.add_argument("id", help=ID_HELP)
    approve.add_argument("--as", dest="principal", type=_principal, metavar="NAME",
                         help="the operator who signs (registered with `operators add`; "
                              "default: settings approver)")
    approve.add_argument("--key", type=Path,
                         help="that operator's key: a private key file, an sk-ed25519 key "
                              "handle, or a .pub whose key ssh-agent holds (default: settings "
                              "operator_key)")
    approve.add_argument("--ttl", type=_ttl, help="how long the approval is valid (900s, 15m, 1h; "
                                       "default: settings approval_ttl)")
    approve.add_argument("--execute", action="store_true",
                         help="execute it right away from here")
    approve.add_argument("--yes", action="store_true",
                         help="do not ask (needed when stdin is not a terminal)")
    approve.set_defaults(func=approve_cmd, open_operators=open_operators)
    reject = approvals.add_parser("reject", help="refuse a pending (or unused approved) one")
    reject.add_argument("id", help=ID_HELP)
    reject.add_argument("--as", dest="principal", type=_principal, metavar="NAME",
                        help="the operator who rejects (default: settings approver)")
    reject.add_argument("--reason", required=True, type=_reason,
                        help="told to the model (printable text on one line)")
    reject.set_defaults(func=reject_cmd)
