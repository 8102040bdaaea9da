"""Executing an approved proposal (a PRA action: an action of the host's disaster-recovery
plan, *plan de reprise d'activité*) at most once, and learning what happened after a crash.

Order of events: the proposal becomes `executing` (with this process as its owner, and the
time) in a committed transaction, and only then is the envelope sent. So a crash at any
point leaves either `approved` (nothing sent) or `executing` with no live owner. Such a
proposal is reconciled when someone asks to execute it again:

1. pra-run's own record of the nonce in the target's journal (read tier), if any, is the
   outcome: the action ran, and ran once.
2. Otherwise the same signed envelope is sent again. The target's nonce ledger makes that
   safe: a first delivery runs the action; a second is refused `replayed_nonce` and runs
   nothing. Whatever is still unknown stays `executing` and says so: never a guess.
"""

import os
import time
from dataclasses import dataclass
from typing import Any

from mcp_linux_infra.approvals.action_tier import ActionRefused, ActionTier, recorded_attempt
from mcp_linux_infra.approvals.store import ApprovalStore, Proposal, StateConflict
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.protocol import ProtocolError, Refusal
from mcp_linux_infra.ssh.errors import SSHError
from mcp_linux_infra.ssh.pool import Pool

STATE_OF_OUTCOME = {"changed": "succeeded", "already-satisfied": "already-satisfied",
                    "failed": "failed"}
JOURNAL_SLACK_S = 300  # search the journal from this long before the window opened
ANSWER_SLACK_S = 30  # wait this long beyond the action's own timeouts for its answer


class NotExecutable(UserError):
    """The proposal's state does not allow an execution (nothing was sent)."""


class TargetRefused(UserError):
    """The target refused the approval; nothing ran (the proposal records why). `reason`:
    the target's code."""

    def __init__(self, message: str, reason: str, hint: str | None = None):
        super().__init__(message, hint)
        self.reason = reason


class OutcomeUnknown(UserError):
    """The approval was (or may have been) used, and its result is not known yet."""


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return "unknown-boot"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot: with the pid, a unique name."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def owner_token() -> str:
    return f"{_boot_id()}:{os.getpid()}:{_start_time(os.getpid())}"


def owner_alive(token: str | None) -> bool:
    """Whether the process that wrote `token` is still running (same boot, pid, start)."""
    if not token:
        return False
    boot, _, rest = token.partition(":")
    pid, _, start = rest.partition(":")
    return boot == _boot_id() and pid.isdigit() and _start_time(int(pid)) == start


def answer_timeout(proposal: Proposal, floor: float) -> float:
    """How long the target may take: three steps at the action's own timeout, plus the
    wait for the host's run lock."""
    info = proposal.action_info or {}
    settings = info.get("settings") or {}
    steps = [info.get("steps") or {}, *(info.get("variants") or {}).values()]
    step = max([s.get("timeout_seconds") or 0 for s in steps if isinstance(s, dict)]
               + [settings.get("step_timeout_seconds") or 120])
    return max(floor, 3 * step + (settings.get("lock_wait_seconds") or 30) + ANSWER_SLACK_S)


def _refusal_text(refusal: Refusal) -> str:
    return f"{refusal.reason} ({refusal.detail})"


def _who(p: Proposal) -> str:
    """"1 of 2 approvals: alice"."""
    return p.count() + (f": {', '.join(p.principals)}" if p.approvals else "")


def _not_executable(proposal: Proposal) -> NotExecutable:
    p = proposal
    approve = f"mcp-linux-infra approvals approve {p.id}"
    messages = {
        "pending": (f"proposal {p.id} is not approved yet ({_who(p)})",
                    (f"{p.required - len(p.approvals)} more operator(s) must approve it: "
                     f"{approve} --as NAME, or in the approval console")),
        "rejected": (f"proposal {p.id} was rejected: {p.reason or 'no reason given'}",
                     "propose something else, with the operator's reason in mind"),
        "expired": (f"proposal {p.id} expired ({p.note or 'its time ran out'})",
                    "propose it again if it is still needed"),
    }
    done = (f"proposal {p.id} was already executed: {p.state} ({p.note or ''}); "
            "an approval works once")
    done_hint = "verify the result (get_service_status), or propose again"
    message, hint = messages.get(p.state, (done, done_hint))
    return NotExecutable(message, hint=hint)


@dataclass
class Executor:
    """Executes proposals of one store through one pool, as `actor` (for the audit)."""

    store: ApprovalStore
    pool: Pool
    actor: str
    answer_floor: float = 60.0

    def execute(self, proposal_id: str, host: Host, trace: str | None = None) -> Proposal:
        """Send an approved proposal's signed envelope once and record the outcome, or
        reconcile an `executing` one whose process died. Raises NotExecutable,
        TargetRefused or OutcomeUnknown with a message that says what to do."""
        self.store.expire_due()
        proposal = self.store.get(proposal_id)
        if proposal.host != host.name:
            raise UserError(f"proposal {proposal_id} is for {proposal.host}, not {host.name}")
        if proposal.state == "executing":
            return self._reconcile(proposal, host, trace)
        if proposal.state != "approved":
            raise _not_executable(proposal)
        try:
            proposal = self.store.transition(
                proposal.id, "executing", self.actor, trace=trace,
                expect={"state": "approved"}, executor=owner_token(), sent_at=time.time(),
                note="sending the signed approval to the target")
        except StateConflict:
            raise _not_executable(self.store.get(proposal_id)) from None
        return self._owned(proposal, trace, lambda: self._send(proposal, host, trace, True))

    def _owned(self, proposal: Proposal, trace: str | None, work) -> Proposal:
        """Run `work` while this process owns the execution; on an unexpected error, give
        the ownership up (a live owner would block every later reconciliation)."""
        try:
            return work()
        except (TargetRefused, OutcomeUnknown):
            raise
        except Exception as exc:
            raise self._unknown(proposal, trace, f"interrupted by an error ({exc!r})") from exc

    # -- one delivery ---------------------------------------------------------------------
    def _send(self, proposal: Proposal, host: Host, trace: str | None,
              first: bool) -> Proposal:
        tier = ActionTier(self.pool, host, trace)
        try:
            result = tier.run(proposal.document_text, self.store.signatures(proposal.id),
                              answer_timeout(proposal, self.answer_floor))
        except ActionRefused as exc:
            return self._refused(proposal, host, trace, exc.refusal, first)
        except (SSHError, ProtocolError) as exc:
            raise self._unknown(proposal, trace, f"no answer from the target ({exc}); the "
                                                 "approval may or may not have been used"
                                ) from None
        ran = "" if first else "the earlier delivery never ran it; this one did: "
        return self._finish(proposal, trace, result, ran + str(result.get("note") or ""))

    def _refused(self, proposal: Proposal, host: Host, trace: str | None, refusal: Refusal,
                 first: bool) -> Proposal:
        reason = refusal.reason
        if reason == "replayed_nonce":
            record = recorded_attempt(self.pool, host, proposal.nonce,
                                      proposal.not_before - JOURNAL_SLACK_S, trace)
            if record is not None:
                return self._from_record(proposal, trace, record)
            raise self._unknown(proposal, trace, "the target has already used this approval, "
                                                 "and its record of the run is not in its "
                                                 "journal yet")
        if reason in ("busy", "not_yet_valid") and first:
            self.store.transition(proposal.id, "approved", self.actor, trace=trace,
                                  executor=None, note=f"the target refused for now "
                                  f"({_refusal_text(refusal)}); the approval is unused")
            raise TargetRefused(f"{proposal.host} refused for now: {_refusal_text(refusal)}",
                                reason, hint="the approval was not used; execute again shortly")
        if reason == "busy" or (reason == "expired" and not first and
                                time.time() < (proposal.sent_at or 0)
                                + answer_timeout(proposal, self.answer_floor)):
            raise self._unknown(proposal, trace, "the first delivery may still be running on "
                                                 f"the target ({_refusal_text(refusal)})")
        state = "expired" if reason == "expired" else "failed"
        self.store.transition(proposal.id, state, self.actor, trace=trace, executor=None,
                              result={"refusal": refusal.__dict__},
                              note=f"refused by the target: {_refusal_text(refusal)}")
        raise TargetRefused(
            f"{proposal.host} refused proposal {proposal.id}: {_refusal_text(refusal)}; "
            f"nothing ran", reason, hint=_REFUSAL_HINTS.get(reason, "propose again; a human must "
                                                            "approve the new proposal"))

    def _finish(self, proposal: Proposal, trace: str | None, result: dict[str, Any],
                note: str) -> Proposal:
        return self.store.transition(proposal.id, STATE_OF_OUTCOME[result["outcome"]],
                                     self.actor, trace=trace, executor=None, result=result,
                                     note=note)

    def _from_record(self, proposal: Proposal, trace: str | None,
                     record: dict[str, Any]) -> Proposal:
        return self._finish(proposal, trace, record,
                            f"from the target's journal (pra-run at {record.get('time')}): "
                            f"{record.get('note') or record.get('outcome')}")

    def _unknown(self, proposal: Proposal, trace: str | None, why: str) -> OutcomeUnknown:
        """Stay `executing`, owned by nobody, so that the next attempt reconciles."""
        self.store.transition(proposal.id, "executing", self.actor, trace=trace,
                              executor=None, note=why)
        return OutcomeUnknown(f"proposal {proposal.id}: {why}",
                              hint="execute it again to reconcile: the target never runs an "
                                   "approval twice")

    # -- after a crash or a lost answer -----------------------------------------------------
    def _reconcile(self, proposal: Proposal, host: Host, trace: str | None) -> Proposal:
        if owner_alive(proposal.executor):
            raise OutcomeUnknown(f"proposal {proposal.id} is being executed right now",
                                 hint="ask get_proposal in a moment")
        try:
            proposal = self.store.transition(
                proposal.id, "executing", self.actor, trace=trace,
                expect={"state": "executing", "executor": proposal.executor},
                executor=owner_token(),
                note="reconciling: the last delivery ended without a recorded answer")
        except StateConflict:
            raise OutcomeUnknown(f"proposal {proposal.id} is being reconciled by another "
                                 "process", hint="ask get_proposal in a moment") from None
        return self._owned(proposal, trace, lambda: self._recover(proposal, host, trace))

    def _recover(self, proposal: Proposal, host: Host, trace: str | None) -> Proposal:
        try:
            record = recorded_attempt(self.pool, host, proposal.nonce,
                                      proposal.not_before - JOURNAL_SLACK_S, trace)
        except (SSHError, ProtocolError) as exc:
            raise self._unknown(proposal, trace, "the target's journal could not be read "
                                                 f"({exc})") from None
        if record is not None:
            return self._from_record(proposal, trace, record)
        return self._send(proposal, host, trace, first=False)


PROPOSE_AGAIN = "propose again; operators must approve the new proposal"
_REFUSAL_HINTS = {
    "bad_signature": "the approval does not match what the operators signed (was the "
                     "proposal changed after approval?); propose again",
    "expired": "the approval's window closed; propose again",
    "wrong_host": "the approval names another host; propose again for this host",
    "unknown_signer": "an approver's key is not in the target's allowed_signers (enrolled "
                      "but not deployed?): an administrator deploys it with the role's "
                      f"mcp_infra_operators; then {PROPOSE_AGAIN}",
    "signer_not_valid": "an approver's key is no longer valid on the target (valid_before); "
                        f"{PROPOSE_AGAIN}",
    "ambiguous_signer": "the target's allowed_signers lists an approver's key under more than "
                        "one operator: fix mcp_infra_operators (one key, one principal)",
    "window_too_long": "the host's max_window_seconds is now shorter than the approval's "
                       f"window (it changed since the proposal was made?); {PROPOSE_AGAIN}",
    "not_enough_approvals": "the target requires more distinct operators than signed (its "
                            "rule changed since the proposal was made?); propose again: the "
                            "new proposal asks for what the host requires now",
    "duplicate_principal": "two signatures are by one operator as the target knows them "
                           "(allowed_signers lists two registered keys under one principal); "
                           f"fix mcp_infra_operators, then {PROPOSE_AGAIN}",
    "user_presence_missing": "a security key signed without a touch (user presence); "
                             f"{PROPOSE_AGAIN}, touching the key to approve",
    "user_verification_missing": "this host or action requires a security key or passkey that "
                                 "verified its user (PIN or biometric); a plain ed25519 key "
                                 f"cannot: {PROPOSE_AGAIN}, approved in the console or with "
                                 "a verifying security key",
    "signer_not_security_key": "this host takes approvals made with security keys or "
                               f"passkeys only; {PROPOSE_AGAIN}, approved with one",
    "webauthn_origin_mismatch": "the approval console's origin is not among this host's "
                                "webauthn_origins: fix the host's setting or the console's "
                                f"LINUX_MCP_CONSOLE_ORIGIN; then {PROPOSE_AGAIN}",
    "unsupported_key_type": "an approver's key type is not one this target verifies "
                            "(ed25519, sk-ed25519, sk-ecdsa/WebAuthn)",
    "document_version_retired": "this target no longer takes this approval's document "
                                f"version; {PROPOSE_AGAIN}",
}
