"""pra-exec: forced command of user pra-runner. Accepts exactly:

    [mcp:trace=ID] list          the action catalog of this host, as JSON
    [mcp:trace=ID] show ACTION   one action, as JSON
    [mcp:trace=ID] run           approval envelope on stdin, handed to `sudo -n pra-run`

Everything else, including a shell or subsystem request, is refused (exit 126, one JSON line
on stderr). pra-exec verifies nothing itself: pra-run (root) decides every `run`.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from typing import Any

from mcp_infra_target import approval, audit
from mcp_infra_target.actions import NAME_RE, CatalogError, load_catalog
from mcp_infra_target.paths import TEST_AUDIT_FILE
from mcp_infra_target.refusal import Refusal, emit

CATALOG = "/etc/mcp-infra/actions.json"
HOST_ID = "/etc/mcp-infra/host-id"
SUDO = "/usr/bin/sudo"
PRA_RUN = "/usr/local/sbin/pra-run"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
COMMAND_RE = re.compile(r"[A-Za-z0-9._:= -]{1,256}\Z")
TRACE_PREFIX = "mcp:trace="
READ_TIMEOUT_SECONDS = 10


def parse(command: str | None) -> tuple[str, str | None, str | None]:
    """(verb, action or None, trace or None) of an SSH_ORIGINAL_COMMAND, or Refusal."""
    if command is None:
        raise Refusal("no_command", "pra-exec", "shell and subsystem requests are refused")
    if not COMMAND_RE.match(command):
        raise Refusal("bad_command", "pra-exec", "empty, over-long or unexpected characters")
    tokens = command.split()
    trace = None
    if tokens and tokens[0].startswith(TRACE_PREFIX):
        trace = tokens.pop(0)[len(TRACE_PREFIX):]
        if not approval.TRACE_RE.match(trace):
            raise Refusal("bad_trace", "pra-exec", "trace must match [A-Za-z0-9._-]{1,64}")
    if tokens in (["list"], ["run"]):
        return tokens[0], None, trace
    if len(tokens) == 2 and tokens[0] == "show":
        if not NAME_RE.match(tokens[1]):
            raise Refusal("unknown_action", "pra-exec", "no such action on this host")
        return "show", tokens[1], trace
    raise Refusal("unknown_command", "pra-exec", "accepted: list, show ACTION, run")


def sudo_argv(root: str = "") -> list[str]:
    """The one command `run` may start; only the sudo binary moves under a test root."""
    return [root + SUDO, "-n", PRA_RUN]


def with_trace(raw: bytes, trace: str | None) -> bytes:
    """Carry the trace id inside the envelope (sudo passes no argv or environment through).

    An envelope that is not a JSON object is forwarded as it came, for pra-run to refuse.
    """
    if trace is None:
        return raw
    try:
        envelope = approval.strict_loads(raw.decode("utf-8"))
        if not isinstance(envelope, dict):
            return raw
        envelope["trace"] = trace
        return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError):
        return raw


def _catalog(root: str):
    try:
        return load_catalog(root + CATALOG)
    except CatalogError:
        raise Refusal("config_error", "actions.json", "action catalog unusable") from None


def _host_id(root: str) -> str | None:
    try:
        with open(root + HOST_ID, encoding="utf-8") as handle:
            return handle.read(512).strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _answer(verb: str, name: str | None, root: str) -> dict[str, Any]:
    catalog = _catalog(root)
    if verb == "list":
        return dict(catalog.public(), host=_host_id(root))
    if name not in catalog.actions:
        raise Refusal("unknown_action", "pra-exec", "no such action on this host")
    return catalog.actions[name].public()


def _handoff(root: str, trace: str | None) -> int:
    raw = approval.read_input(0, approval.ENVELOPE_MAX_BYTES, READ_TIMEOUT_SECONDS)
    try:
        proc = subprocess.run(sudo_argv(root), input=with_trace(raw, trace), env=ENV, cwd="/",
                              close_fds=True, check=False)
    except OSError:
        raise Refusal("config_error", "pra-exec", "cannot start sudo") from None
    return proc.returncode


def main(environ: dict[str, str], root: str = "") -> int:
    """Answer one request; `root` is the test root ("" in production)."""
    started = time.monotonic()
    command = environ.get("SSH_ORIGINAL_COMMAND")
    record: dict[str, Any] = dict(audit.client_fields(environ), event="pra-exec",
                                  request=None if command is None else audit.escape(command))
    try:
        verb, name, trace = parse(command)
        record.update(verb=verb, action=name, trace=trace)
        if verb == "run":
            record["exit_code"] = code = _handoff(root, trace)
        else:
            sys.stdout.write(json.dumps(_answer(verb, name, root), sort_keys=True) + "\n")
            code = 0
        record["decision"] = "accepted"
    except Refusal as refusal:
        refusal.command = "pra-exec"
        record.update(decision="refused", refusal=refusal.as_dict())
        code = emit(refusal, sys.stderr)
    record["duration_ms"] = int((time.monotonic() - started) * 1000)
    audit.record("pra-exec", record, warning=record["decision"] != "accepted",
                 file_path=root + TEST_AUDIT_FILE if root else None)
    return code
