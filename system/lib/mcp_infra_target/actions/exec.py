"""pra-exec: forced command of user pra-runner, the network side of the PRA's action tier
(plan de reprise d'activité: the disaster-recovery plan the actions belong to). Accepts exactly:

    [mcp:trace=ID] list          the action catalog of this host (and allowed_signers'
                                 principals), as JSON
    [mcp:trace=ID] show ACTION   one action, as JSON
    [mcp:trace=ID] run           approval envelope on stdin, handed to `sudo -n pra-run`

Everything else, including a shell or subsystem request, is refused (exit 126, one JSON line
on stderr). pra-exec verifies nothing itself: pra-run (root) decides every `run`.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from typing import Any

from mcp_infra_target.actions import approval, signers
from mcp_infra_target.actions.catalog import NAME_RE, CatalogError, load_catalog
from mcp_infra_target.core import audit, strictjson
from mcp_infra_target.core.bootstrap import UntrustedPath
from mcp_infra_target.core.layout import Layout
from mcp_infra_target.core.refusal import Refusal, emit, take_trace

ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
COMMAND_RE = re.compile(r"[A-Za-z0-9._:= -]{1,256}\Z")
READ_TIMEOUT_SECONDS = 10
RULE = "request/pra-exec"


def parse(command: str | None) -> tuple[str, str | None, str | None]:
    """(verb, action or None, trace or None) of an SSH_ORIGINAL_COMMAND, or Refusal."""
    if command is None:
        raise Refusal("shell_request", "request/screen",
                      "shell and subsystem requests are refused")
    if not COMMAND_RE.match(command):
        raise Refusal("bad_command", "request/screen",
                      "empty, over-long or unexpected characters")
    trace, tokens = take_trace(command.split())
    if tokens in (["list"], ["run"]):
        return tokens[0], None, trace
    if len(tokens) == 2 and tokens[0] == "show":
        if not NAME_RE.match(tokens[1]):
            raise Refusal("unknown_action", "actions/catalog", "no such action on this host")
        return "show", tokens[1], trace
    raise Refusal("unknown_command", RULE, "accepted: list, show ACTION, run")


def sudo_argv(layout: Layout) -> list[str]:
    """The one command `run` may start; only the sudo binary moves under a test root."""
    return [layout.path("sudo"), "-n", Layout().path("pra-run")]


def with_trace(raw: bytes, trace: str | None) -> bytes:
    """Carry the trace id inside the envelope (sudo passes no argv or environment through).

    An envelope that is not a JSON object is forwarded as it came, for pra-run to refuse.
    """
    if trace is None:
        return raw
    try:
        envelope = strictjson.loads(raw.decode("utf-8"))
        if not isinstance(envelope, dict):
            return raw
        envelope["trace"] = trace
        return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError):
        return raw


def _catalog(layout: Layout):
    try:
        return load_catalog(layout.path("catalog"))
    except CatalogError:
        raise Refusal("config_error", "config/catalog", "action catalog unusable") from None


def _principals(layout: Layout) -> list[str] | None:
    """allowed_signers' principals, read only through the trust rule pra-run applies to it
    (None when it is untrusted or unreadable: pra-run would refuse every run then)."""
    try:
        return signers.principals(layout.check_trusted("allowed_signers"))
    except (UntrustedPath, OSError):
        return None


def _answer(verb: str, name: str | None, layout: Layout) -> dict[str, Any]:
    catalog = _catalog(layout)
    if verb == "list":
        return dict(catalog.public(), host=layout.host_id(),
                    principals=_principals(layout))
    if name not in catalog.actions:
        raise Refusal("unknown_action", "actions/catalog", "no such action on this host")
    return catalog.actions[name].public()


def _handoff(layout: Layout, trace: str | None) -> int:
    raw = approval.read_envelope(0, approval.ENVELOPE_MAX_BYTES, READ_TIMEOUT_SECONDS)
    try:
        proc = subprocess.run(sudo_argv(layout), input=with_trace(raw, trace), env=ENV, cwd="/",
                              close_fds=True, check=False)
    except OSError:
        raise Refusal("config_error", "config/sudo", "cannot start sudo") from None
    return proc.returncode


def main(test_root: str | None = None, environ: dict[str, str] | None = None) -> int:
    """Answer one request (SSH_ORIGINAL_COMMAND of `environ`, the process's by default)."""
    started = time.monotonic()
    layout = Layout(test_root)
    environ = dict(os.environ) if environ is None else environ
    command = environ.get("SSH_ORIGINAL_COMMAND")
    record: dict[str, Any] = dict(audit.client_fields(environ), event="pra-exec",
                                  request=None if command is None else audit.escape(command))
    try:
        verb, name, trace = parse(command)
        record.update(verb=verb, action=name, trace=trace)
        if verb == "run":
            record["exit_code"] = code = _handoff(layout, trace)
        else:
            sys.stdout.write(json.dumps(_answer(verb, name, layout), sort_keys=True) + "\n")
            code = 0
        record["decision"] = "accepted"
    except Refusal as refusal:
        refusal.command = "pra-exec"
        record.update(decision="refused", refusal=refusal.as_dict())
        code = emit(refusal, sys.stderr)
    record["duration_ms"] = int((time.monotonic() - started) * 1000)
    audit.record("pra-exec", record, warning=record["decision"] != "accepted",
                 file_path=layout.audit_file)
    return code
