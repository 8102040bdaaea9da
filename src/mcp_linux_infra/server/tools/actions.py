"""The action tools: list a host's PRA actions (its *plan de reprise d'activité*, the
disaster-recovery plan its remediation actions belong to), propose one, follow it, execute
it once enough operators approved it, verify the result. No tool approves: only operators
can, each with their own key (`mcp-linux-infra approvals approve --as NAME`, or the approval
console), and the target checks every signature and the number of distinct operators itself.
"""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.approvals.action_tier import ActionTier
from mcp_linux_infra.approvals.executor import Executor
from mcp_linux_infra.approvals.preview import preview
from mcp_linux_infra.approvals.store import STATES, Proposal
from mcp_linux_infra.console_links import proposal_url
from mcp_linux_infra.display import FREE_TEXT_RULE
from mcp_linux_infra.inventory import Host
from mcp_linux_infra.server import parsers
from mcp_linux_infra.server.answers import checked
from mcp_linux_infra.server.args import FormatArg, Unit, screened
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.toolcall import EXECUTES, LOCAL_ONLY, PROPOSES, READ_ONLY, Call, tool
from mcp_linux_infra.server.tools.services import unit_batch

ProposalId = Annotated[str, Field(pattern=r"^p[0-9a-f]{8}$",
                                  description="A proposal id, e.g. p1a2b3c4d")]
State = Literal[STATES]
STEPS = ("check", "run", "verify")


def _link(call: Call, p: Proposal) -> str:
    return proposal_url(call.state.settings, p.id)


def _actor(call: Call) -> str:
    return f"model:{call.client or 'local'}"


def _summary(p: Proposal) -> dict[str, Any]:
    return {"id": p.id, "state": p.state, "host": p.host, "action": p.action,
            "params": p.params, "created_at": p.created_at, "not_after": p.not_after,
            "approvals": p.count(), "note": p.note}


def _approvals(p: Proposal) -> dict[str, Any]:
    """"1 of 2 approvals" and who approved, for the model to tell the user."""
    return {"summary": p.count(), "required": p.required, "approved_by": p.principals}


def _steps(result: dict | None) -> dict[str, Any] | None:
    """What each step did, without the bulk (stdout/stderr stay in get_proposal)."""
    if not result or "refusal" in result:
        return None
    return {name: None if not isinstance(result.get(name), dict) else
            {k: result[name].get(k) for k in ("exit", "ok", "timed_out")} for name in STEPS}


def _next_step(p: Proposal, link: str) -> str:
    unit = p.params.get("unit")
    check = (f"verify_service(host='{p.host}', service='{unit}')" if unit
             else "the read-only tools")
    missing = p.required - len(p.approvals)
    who = "an operator" if missing == 1 else f"{missing} more distinct operators"
    return {
        "pending": f"{p.count()}: {who} must approve it, in the approval console ({link}) or "
                   f"with `mcp-linux-infra approvals approve {p.id} --as NAME` (they see the "
                   "host, action, params, your rationale and the preview); tell the user "
                   f"where. Then call execute_pra_action(proposal_id='{p.id}').",
        "approved": f"Approved ({p.count()}: {', '.join(p.principals)}) until "
                    f"{p.not_after} (Unix time): call "
                    f"execute_pra_action(proposal_id='{p.id}').",
        "executing": f"Call execute_pra_action(proposal_id='{p.id}') again to learn the "
                     "outcome (the target never runs an approval twice).",
        "succeeded": f"Done; confirm with {check}.",
        "already-satisfied": f"Nothing needed doing; confirm with {check}.",
        "failed": f"It failed ({p.note}); look at get_proposal and the logs, then propose "
                  "again if a retry makes sense.",
    }.get(p.state, "Nothing more can happen to this proposal; propose again if needed.")


@tool(READ_ONLY)
def list_pra_actions(call: Call, host: Host, format: FormatArg = "json") -> CallToolResult:
    """The remediation actions this host offers (its own catalog, as its action tier
    lists it): name, description, parameters and their allowed values, who it runs as.
    An action runs only after a human approved it: see propose_pra_action."""
    catalog = ActionTier(call.state.pool, host, call.trace).catalog()
    actions = [{"name": name, "description": a.get("description"),
                "params": {p: spec.get("values") for p, spec in
                           (a.get("params") or {}).items()},
                "runs_as": a.get("runs_as")} for name, a in sorted(catalog.actions.items())]
    return render({"host": host.name, "max_approval_window_s": catalog.max_window,
                   "actions": actions}, format)


@tool(PROPOSES, scope="propose")
def propose_pra_action(
    call: Call,
    host: Host,
    action: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$",
                                 description="An action name from list_pra_actions")],
    params: Annotated[dict[str, str], Field(
        description="The action's parameters, e.g. {\"unit\": \"nginx\"}; exactly those "
                    "list_pra_actions shows, with one of their allowed values")],
    rationale: Annotated[str, Field(min_length=10, max_length=2000, description=(
        "Why: the evidence from your diagnosis, for the human who approves; "
        f"{FREE_TEXT_RULE} (anything else is refused, with the reason)"))],
) -> CallToolResult:
    """Propose a remediation action for a human to approve. It is checked against the
    host's own catalog and, where a read-only equivalent of the action's check exists,
    previewed through the read-only tier. Nothing runs now: the answer is a proposal id
    and the operator's next step. No tool can approve it."""
    screened("rationale", rationale)
    catalog = ActionTier(call.state.pool, host, call.trace).catalog()
    catalog.check_params(action, params)
    required = catalog.required(action)
    spec = catalog.action(action)
    info = {k: spec.get(k) for k in ("description", "runs_as", "steps", "variants",
                                     "variants_by") if spec.get(k) is not None}
    info["settings"] = catalog.settings
    shown = preview(call.target(host), action, spec, params)
    p = call.state.approvals.create(host.name, action, params, rationale, catalog.max_window,
                                    preview=shown, action_info=info,
                                    proposed_by=_actor(call), trace=call.trace,
                                    required=required)
    link = _link(call, p)
    return render({"proposal_id": p.id, "state": p.state, "host": p.host,
                   "action": p.action, "params": p.params, "preview": shown,
                   "approvals": _approvals(p), "console_url": link,
                   "next_step": _next_step(p, link)})


@tool(LOCAL_ONLY)
def get_proposal(call: Call, proposal_id: ProposalId) -> CallToolResult:
    """One proposal: its state, params, rationale, preview, approval window, the
    target's full result once executed, and every change of state so far."""
    call.state.approvals.expire_due()
    p = call.proposal(proposal_id)
    data = p.public()
    data["approvals"] = dict(_approvals(p), records=p.approvals)
    del data["approvals_count"]
    data["history"] = call.state.approvals.history(p.id)
    data["console_url"] = link = _link(call, p)
    data["next_step"] = _next_step(p, link)
    return render(data)


@tool(LOCAL_ONLY)
def list_proposals(call: Call, state: State | None = None,
                   host: Annotated[str | None, Field(max_length=253)] = None,
                   limit: Annotated[int, Field(ge=1, le=500)] = 50,
                   format: FormatArg = "json") -> CallToolResult:
    """Proposals, newest first, optionally of one state or host."""
    call.state.approvals.expire_due()
    rows = [_summary(p) for p in call.proposals(state, host, limit)]
    return render({"count": len(rows), "proposals": rows}, format)


@tool(EXECUTES, scope="execute")
def execute_pra_action(call: Call, proposal_id: ProposalId) -> CallToolResult:
    """Execute an APPROVED proposal inside its approval window: the operator's signed
    approval goes to the host, which verifies it and runs check -> run -> verify. An
    approval works once. Refused while pending, after a rejection, after expiry, once
    executed, and by the host if anything differs from what the operator signed."""
    p = call.proposal(proposal_id)
    executor = Executor(call.state.approvals, call.state.pool, _actor(call),
                        answer_floor=call.state.settings.command_timeout)
    p = executor.execute(p.id, call.host(p.host), call.trace)
    result = p.result or {}
    return render({"proposal_id": p.id, "state": p.state, "host": p.host,
                   "action": p.action, "params": p.params,
                   "outcome": result.get("outcome"), "note": p.note,
                   "steps": _steps(result), "next_step": _next_step(p, _link(call, p))})


@tool(READ_ONLY)
def verify_service(call: Call, host: Host, service: Unit,
                   log_lines: Annotated[int, Field(ge=0, le=100)] = 10) -> CallToolResult:
    """Is this service running now? Its state, since when, its main process, restarts,
    and its latest journal lines, in one round trip (read-only)."""
    outs = call.target(host).batch(unit_batch(service, log_lines))
    props = (parsers.show(checked(call, host, outs["show"]).stdout) or [{}])[0]
    if props.get("LoadState") == "not-found":
        raise ToolError(f"{host.name} has no unit {service!r}")
    data = {"host": host.name, "service": props.get("Id", service),
            "active": props.get("ActiveState") == "active",
            "verdict": f"{props.get('Id', service)} is {props.get('ActiveState')} "
                       f"({props.get('SubState')})",
            "since": props.get("ActiveEnterTimestamp"), "main_pid": props.get("MainPID"),
            "restarts": props.get("NRestarts"), "enabled": props.get("UnitFileState"),
            "result": props.get("Result")}
    if log_lines:
        log = outs["log"]
        data["log"] = parsers.journal(log.stdout) if log.status == "ok" else []
    return render(data)
