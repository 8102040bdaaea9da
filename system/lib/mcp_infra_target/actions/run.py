"""pra-run (root, via `sudo -n` from pra-exec): verify a signed approval, run the action once.
The root side of the PRA's action tier (plan de reprise d'activité: the disaster-recovery
plan the actions belong to).

Order: open the log; read and parse the envelope; canonical document (v2, or v1 for one
release); config; signatures (signers.py: decoded, each principal learned from
allowed_signers and verified by ssh-keygen; presence, verification, security keys only,
WebAuthn origins; distinct principals against max(document's `approvals`, the action's
`approvals`, the host's `min_approvals`)); the step's host id; window; action and params; the
host's run lock (window checked again); a plan's earlier steps for this host already in the
ledger; the step's nonce recorded durably; check -> run -> verify; nonces whose window has
closed leave the ledger.
Every attempt, accepted or refused, is one log line. Until the signature verifies, that line
holds only the SHA-256 and size of what the client sent (envelope, document, signature) and
the refusal: nothing the client chose reaches the log before an operator's key vouches for
it. Steps are logged by status only, never by output.
Exit: 0 changed or already-satisfied, 1 failed, 126 refused.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from typing import Any

from mcp_infra_target.actions import approval, log, signers, state, steps
from mcp_infra_target.actions.catalog import CatalogError, ParamError, load_catalog
from mcp_infra_target.core.bootstrap import UntrustedPath
from mcp_infra_target.core.layout import Layout
from mcp_infra_target.core.refusal import Refusal, emit

# the files that decide, and the rule a refusal names for each
CONFIG_FILES = (("catalog", "config/catalog"), ("host_id", "config/host_id"),
                ("allowed_signers", "config/allowed_signers"))
READ_TIMEOUT_SECONDS = 10
# logged once the operators' signatures over them are verified: the document's, the step's
SIGNED_FIELDS = ("v", "approvals", "not_before", "not_after")
STEP_FIELDS = ("host", "action", "params", "nonce")
EXIT_FAILED = 1


def _ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)


def _host_id(layout: Layout) -> str:
    host = layout.host_id() or ""
    if not approval.FIELD_RES["host"].match(host):
        raise Refusal("config_error", "config/host_id", "no valid host id on this host")
    return host


def _summary(step):
    """A step as the log keeps it: status only, never output."""
    if step is None:
        return None
    return {k: step[k] for k in ("exit", "ok", "timed_out", "truncated", "duration_ms", "error",
                                 "attempts") if k in step}


def _check_config(layout: Layout, record: dict[str, Any]) -> None:
    """Refuse unless the files that decide (catalog, host id, allowed_signers) and their
    directories are root's alone: the same ownership rule as the library's."""
    for name, rule in CONFIG_FILES:
        try:
            layout.check_trusted(name)
        except UntrustedPath as exc:
            record["config_problem"] = str(exc)
            raise Refusal("config_error", rule, "missing, or writable by others") from None


def _document(envelope: dict[str, Any]) -> dict[str, Any]:
    """The signed document in one shape (approval.signed), with the step to run."""
    doc = approval.signed(approval.parse_document(envelope["document"]))
    if doc["v"] != envelope["version"]:
        raise Refusal("bad_envelope", "envelope/version",
                      "a v1 document comes with `signature`, a v2 one with `signatures`")
    if envelope["step"] >= len(doc["steps"]):
        raise Refusal("bad_envelope", "envelope/step", "the document has no such step")
    return doc


def _approvers(layout: Layout, record: dict[str, Any], envelope: dict[str, Any],
               doc: dict[str, Any], settings: dict[str, Any], action) -> list[str]:
    """Verify every signature and the host's approval rules; the distinct principals."""
    details: list[dict[str, str]] = []
    started = time.monotonic()
    try:
        approvals = signers.identify(
            envelope["document"].encode("utf-8"), envelope["signatures"], doc["approver"],
            layout.path("allowed_signers"), layout.path("scratch"), details)
    finally:
        record["durations_ms"]["signature"] = _ms(started)
        record["ssh_keygen"] = details
    record["verified"] = True
    step = doc["steps"][envelope["step"]]
    record.update({k: doc[k] for k in SIGNED_FIELDS}, proposal=doc["id"], step=envelope["step"],
                  steps=len(doc["steps"]), **{k: step[k] for k in STEP_FIELDS})
    if doc["approver"] is not None:
        record["approver"] = doc["approver"]
    record["signers"] = [one.summary() for one in approvals]
    record["signer_key"] = approvals[0].fingerprint
    signers.check_rules(approvals, settings, action is not None and action.user_verification)
    record["required"] = required = max(doc["approvals"], settings["min_approvals"],
                                        1 if action is None else action.approvals)
    record["principals"] = principals = signers.count(approvals, required)
    return principals


def _earlier_steps_done(state_dir: str, doc: dict[str, Any], index: int, host_id: str) -> None:
    """A plan runs in order: every earlier step addressed to this host is in the ledger."""
    for step in doc["steps"][:index]:
        if step["host"] == host_id and not state.nonce_recorded(state_dir, step["nonce"]):
            raise Refusal("step_out_of_order", "state/plan",
                          "an earlier step of this plan has not run on this host")


def _attempt(layout: Layout, record: dict[str, Any], started: float, now: int) -> dict[str, Any]:
    """Everything after the log is open; returns the result or raises Refusal."""
    raw = approval.read_envelope(0, approval.ENVELOPE_READ_MAX_BYTES, READ_TIMEOUT_SECONDS)
    record.update(envelope_sha256=hashlib.sha256(raw).hexdigest(), envelope_bytes=len(raw))
    envelope = approval.parse_envelope(raw)
    document = envelope["document"].encode("utf-8", "surrogatepass")
    record.update(trace=envelope["trace"], document_sha256=hashlib.sha256(document).hexdigest(),
                  document_bytes=len(document), signature_bytes=[
                      len(s.encode("utf-8", "surrogatepass")) for s in envelope["signatures"]])
    doc = _document(envelope)
    _check_config(layout, record)
    try:
        catalog = load_catalog(layout.path("catalog"))
    except CatalogError as exc:
        record["catalog_error"] = str(exc)
        raise Refusal("config_error", "config/catalog", "action catalog unusable") from None
    host_id = _host_id(layout)
    settings = catalog.settings
    index = envelope["step"]
    step = doc["steps"][index]
    action = catalog.actions.get(step["action"])
    principals = _approvers(layout, record, envelope, doc, settings, action)
    if step["host"] != host_id:
        raise Refusal("wrong_host", "config/host_id", "approval is for another host")
    approval.check_window(doc, now, settings["clock_skew_seconds"], settings["max_window_seconds"])
    if action is None:
        raise Refusal("unknown_action", "actions/catalog", "no such action on this host")
    try:
        action.check_params(step["params"])
    except ParamError as exc:
        raise Refusal("bad_params", "actions/%s/params" % action.name, str(exc)) from None
    lock_started = time.monotonic()
    state_dir = layout.path("state")
    with state.exclusive(state_dir, settings["lock_wait_seconds"]):
        record["durations_ms"]["lock_wait"] = _ms(lock_started)
        approval.check_window(doc, int(time.time()), settings["clock_skew_seconds"],
                              settings["max_window_seconds"])
        _earlier_steps_done(state_dir, doc, index, host_id)
        state.record_nonce(state_dir, step["nonce"], {
            "time": now, "proposal": doc["id"], "step": index, "host": step["host"],
            "action": action.name, "params": step["params"], "principals": principals,
            "not_after": doc["not_after"]})
        steps_started = time.monotonic()
        done = steps.execute(
            action.plan(step["params"]), action.name, step["params"], state_dir,
            settings["output_cap_bytes"], int(time.time()),
            {"time": int(time.time()), "proposal": doc["id"], "nonce": step["nonce"]})
        record["durations_ms"]["steps"] = _ms(steps_started)
        record["ledger"] = _prune(state_dir, settings["clock_skew_seconds"])
    record["durations_ms"]["total"] = _ms(started)
    record.update(decision="accepted", outcome=done["outcome"], note=done["note"],
                  **{name: _summary(done[name]) for name in ("check", "run", "verify")})
    result = {k: step[k] for k in STEP_FIELDS}
    result.update(proposal=doc["id"], step=index, principals=principals)
    if doc["approver"] is not None:
        result["approver"] = doc["approver"]
    result.update(done, trace=envelope["trace"], durations_ms=record["durations_ms"])
    return result


def _prune(state_dir: str, skew: int) -> dict[str, Any]:
    """Remove the ledger's closed windows. The action has run: a failure here is logged and
    changes nothing in the answer."""
    try:
        return state.prune_nonces(state_dir, int(time.time()), skew)
    except Exception as exc:  # noqa: BLE001 - see above
        return {"error": type(exc).__name__}


def _log(attempt_log, record: dict[str, Any], syslog_file) -> None:
    """Write the attempt's line; fall back to syslog alone if the file cannot take it."""
    try:
        if attempt_log is not None:
            attempt_log.write(record)
            return
    except OSError:
        record["log_error"] = "pra-run log write failed"
    log.syslog_only(record, syslog_file)


def main(test_root: str | None = None, argv: list[str] | None = None) -> int:
    """Run one attempt; `argv` are the program's arguments (none is accepted)."""
    started = time.monotonic()
    now = int(time.time())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    os.umask(0o027)
    layout = Layout(test_root)
    argv = sys.argv[1:] if argv is None else argv
    record: dict[str, Any] = {
        "event": "pra-run", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "sudo_user": os.environ.get("SUDO_USER"), "decision": "refused", "verified": False,
        "durations_ms": {}}
    attempt_log = None
    try:
        if test_root is None and os.geteuid() != 0:
            raise Refusal("config_error", "config/root", "pra-run must run as root")
        attempt_log = log.AttemptLog(layout.path("log"), layout.audit_file)
        if argv:
            raise Refusal("bad_command", "request/pra-run", "pra-run takes no arguments")
        result = _attempt(layout, record, started, now)
    except Exception as exc:  # noqa: BLE001 - every attempt ends in one log line
        refusal = exc if isinstance(exc, Refusal) else Refusal(
            "internal_error", "pra-run/internal", "unexpected error; see the pra-run log")
        if not isinstance(exc, Refusal):  # its text may quote the input: only once verified
            record["exception"] = repr(exc) if record["verified"] else type(exc).__name__
        refusal.command = "pra-run"
        record["refusal"] = refusal.as_dict()
        record["durations_ms"]["total"] = _ms(started)
        _log(attempt_log, record, layout.audit_file)
        return emit(refusal, sys.stderr)
    _log(attempt_log, record, layout.audit_file)
    try:
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
        sys.stdout.flush()
    except OSError:
        pass
    return 0 if result["outcome"] != "failed" else EXIT_FAILED
