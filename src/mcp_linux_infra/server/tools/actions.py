"""The action tools: list a host's PRA actions (its *plan de reprise d'activité*, the
disaster-recovery plan its remediation actions belong to), propose one, follow it, execute
it once enough operators approved it (get_service_status verifies the result). No tool approves: only operators
can, each with their own key (`mcp-linux-infra approvals approve --as NAME`, or the approval
console), and the target checks every signature and the number of distinct operators itself.
"""

from typing import Annotated, Any, Literal

from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.approvals.action_tier import ActionTier
from mcp_linux_infra.approvals.executor import Executor
from mcp_linux_infra.approvals.preview import preview
from mcp_linux_infra.approvals.store import STATES, Proposal
from mcp_linux_infra.console_links import proposal_url
from mcp_linux_infra.inventory import Host
from mcp_linux_infra.server.args import DEFAULT_FORMAT, FormatArg, screened
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.refused import Refused
from mcp_linux_infra.server.schemas import shape
from mcp_linux_infra.server.times import iso, isoed
from mcp_linux_infra.server.toolcall import EXECUTES, LOCAL_ONLY, PROPOSES, READ_ONLY, Call, tool

ProposalId = Annotated[str, Field(pattern=r"^p[0-9a-f]{8}$")]
State = Literal[STATES]
STEPS = ("check", "run", "verify")


def _link(call: Call, p: Proposal) -> str:
    return proposal_url(call.state.settings, p.id)


def _actor(call: Call) -> str:
    return f"model:{call.client or 'local'}"


def _summary(p: Proposal) -> dict[str, Any]:
    return {"id": p.id, "state": p.state, "host": p.host, "action": p.action,
            "params": p.params, "created_at": iso(p.created_at), "not_after": iso(p.not_after),
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
    check = (f"get_service_status(host='{p.host}', service='{unit}')" if unit
             else "the read-only tools")
    missing = p.required - len(p.approvals)
    who = "an operator" if missing == 1 else f"{missing} more distinct operators"
    return {
        "pending": f"{p.count()}: {who} must approve it, in the approval console ({link}) or "
                   f"with `mcp-linux-infra approvals approve {p.id} --as NAME` (they see the "
                   "host, action, params, your rationale and the preview); tell the user "
                   f"where. Then call execute_pra_action(proposal_id='{p.id}').",
        "approved": f"Approved ({p.count()}: {', '.join(p.principals)}) until "
                    f"{iso(p.not_after)}: call "
                    f"execute_pra_action(proposal_id='{p.id}').",
        "executing": f"Call execute_pra_action(proposal_id='{p.id}') again to learn the "
                     "outcome (the target never runs an approval twice).",
        "succeeded": f"Done; confirm with {check}.",
        "already-satisfied": f"Nothing needed doing; confirm with {check}.",
        "failed": f"It failed ({p.note}); look at get_proposal and the logs, then propose "
                  "again if a retry makes sense.",
    }.get(p.state, "Nothing more can happen to this proposal; propose again if needed.")


@tool(READ_ONLY, title="List remediation actions",
      output=shape("max_approval_window_s", "actions"))
def list_pra_actions(call: Call, host: Host,
                     format: FormatArg = DEFAULT_FORMAT) -> CallToolResult:
    """The fixes a host offers and their allowed parameters; each runs only after human
    approval."""
    catalog = ActionTier(call.state.pool, host, call.trace).catalog()
    actions = [{"name": name, "description": a.get("description"),
                "params": {p: spec.get("values") for p, spec in
                           (a.get("params") or {}).items()},
                "runs_as": a.get("runs_as")} for name, a in sorted(catalog.actions.items())]
    return render({"host": host.name, "max_approval_window_s": catalog.max_window,
                   "actions": actions}, format)


@tool(PROPOSES, title="Propose a remediation",
      output=shape("proposal_id", "state", "approvals", "next_step"), scope="propose")
def propose_pra_action(
    call: Call,
    host: Host,
    action: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$",
                                 description="From list_pra_actions")],
    params: Annotated[dict[str, str], Field(
        description="Those list_pra_actions shows, e.g. {\"unit\": \"nginx\"}")],
    rationale: Annotated[str, Field(min_length=10, max_length=2000, description=(
        "Your evidence, for the human who approves: one printable line"))],
    format: FormatArg = DEFAULT_FORMAT,
) -> CallToolResult:
    """Propose a fix for a human to approve; nothing runs. Gives a proposal id and the
    next step."""
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
                   "next_step": _next_step(p, link)}, format)


@tool(LOCAL_ONLY, title="Get a proposal",
      output=shape("id", "state", "approvals", "history", "next_step"))
def get_proposal(call: Call, proposal_id: ProposalId,
                 format: FormatArg = DEFAULT_FORMAT) -> CallToolResult:
    """A proposal: state, approvals, preview, result, history."""
    call.state.approvals.expire_due()
    p = call.proposal(proposal_id)
    data = isoed(p.public())
    data["approvals"] = dict(_approvals(p), records=[isoed(a) for a in p.approvals])
    del data["approvals_count"]
    data["history"] = [isoed(h) for h in call.state.approvals.history(p.id)]
    data["console_url"] = link = _link(call, p)
    data["next_step"] = _next_step(p, link)
    return render(data, format)


@tool(LOCAL_ONLY, title="List proposals", output=shape("count", "proposals"))
def list_proposals(call: Call, state: State | None = None,
                   host: Annotated[str | None, Field(max_length=253,
                                                     description="Inventory host")] = None,
                   limit: Annotated[int, Field(ge=1, le=500)] = 50,
                   format: FormatArg = DEFAULT_FORMAT) -> CallToolResult:
    """Proposals, newest first, optionally of one state or host."""
    call.state.approvals.expire_due()
    rows = [_summary(p) for p in call.proposals(state, host, limit)]
    return render({"count": len(rows), "proposals": rows}, format)


@tool(EXECUTES, title="Execute an approved remediation",
      output=shape("proposal_id", "state", "outcome", "next_step"), scope="execute")
def execute_pra_action(call: Call, proposal_id: ProposalId,
                       format: FormatArg = DEFAULT_FORMAT) -> CallToolResult:
    """Run an APPROVED proposal once, inside its window; refused otherwise."""
    p = call.proposal(proposal_id)
    executor = Executor(call.state.approvals, call.state.pool, _actor(call),
                        answer_floor=call.state.settings.command_timeout)
    p = executor.execute(p.id, call.host(p.host), call.trace)
    result = p.result or {}
    return render({"proposal_id": p.id, "state": p.state, "host": p.host,
                   "action": p.action, "params": p.params,
                   "outcome": result.get("outcome"), "note": p.note,
                   "steps": _steps(result), "next_step": _next_step(p, _link(call, p))},
                  format)
