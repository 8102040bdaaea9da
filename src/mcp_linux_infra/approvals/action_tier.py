"""The client of a host's action tier: the PRA actions (*plan de reprise d'activité*, the
disaster-recovery plan the host's remediation actions belong to), run by the user pra-runner
whose forced command is pra-exec, and the one place the read tier is asked what pra-run
recorded.

`list` gives the host's catalog (with its approval rules); `run` takes the envelope
{document, signatures, step} on stdin and answers the result JSON (exit 0 or 1) or one
refusal line (exit 126). pra-run also writes every attempt to syslog as root; the reader
(group systemd-journal) finds the record of a nonce there, which is how an execution whose
answer was lost learns what happened.
"""

import json
from dataclasses import dataclass
from typing import Any

from mcp_infra_target.actions import catalog as target_catalog

from mcp_linux_infra.errors import UserError
from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.commands import argv
from mcp_linux_infra.readonly.protocol import (
    EXIT_REFUSED,
    ProtocolError,
    Refusal,
    Target,
    refusal_line,
    with_trace,
)
from mcp_linux_infra.ssh.pool import Pool

RESULT_EXITS = (0, 1)  # changed or already-satisfied; failed


class ActionRefused(Exception):
    """The target refused the request (pra-exec or pra-run); nothing ran."""

    def __init__(self, refusal: Refusal):
        super().__init__(f"{refusal.reason}: {refusal.detail}")
        self.refusal = refusal


@dataclass(frozen=True)
class Catalog:
    """A host's `list` answer: its host id, settings and actions by name."""

    host_id: str
    settings: dict[str, Any]
    actions: dict[str, dict[str, Any]]
    principals: tuple[str, ...] | None = None  # allowed_signers' (None: an older target)

    @classmethod
    def of(cls, data: dict) -> "Catalog":
        actions = data.get("actions")
        if not isinstance(actions, list) or not isinstance(data.get("settings"), dict):
            raise ProtocolError("pra-exec list answered without actions and settings")
        names = data.get("principals")
        listed = isinstance(names, list) and all(isinstance(n, str) for n in names)
        return cls(host_id=str(data.get("host")), settings=data["settings"],
                   actions={a["name"]: a for a in actions if isinstance(a, dict) and "name" in a},
                   principals=tuple(names) if listed else None)

    @property
    def max_window(self) -> int:
        return int(self.settings.get("max_window_seconds", 3600))

    def required(self, name: str) -> int:
        """Distinct operators this host requires for the action: max(the action's
        `approvals`, the host's `min_approvals`). A catalog without approval rules is a
        target tier older than signed documents v2, the only ones this server has signed:
        refused, with the upgrade to do."""
        if "min_approvals" not in self.settings:
            raise UserError(f"{self.host_id} runs a target tier older than approval documents "
                            "v2 (its catalog shows no approval rules): actions there can no "
                            "longer be approved from this server",
                            hint="deploy this version's role to it (playbooks/"
                                 "deploy-mcp-infra.yml), then propose again")
        return max(int(self.action(name).get("approvals", 1)),
                   int(self.settings["min_approvals"]))

    def action(self, name: str) -> dict[str, Any]:
        if name not in self.actions:
            raise UserError(f"{self.host_id} offers no action {name!r}",
                            hint=f"its actions: {', '.join(sorted(self.actions)) or 'none'}")
        return self.actions[name]

    def check_params(self, name: str, params: dict[str, str]) -> None:
        """The target's own check of params (mcp_infra_target, the code pra-run runs again
        when it is asked to run the action), on this host's answer; a refusal says what the
        action takes and the values this host allows."""
        spec = self.action(name).get("params") or {}
        try:
            target_catalog.check_params(spec, params)
        except target_catalog.ParamError as exc:
            allowed = "; ".join(f"{p}: {', '.join(map(str, s.get('values') or [])) or 'none'}"
                                for p, s in sorted(spec.items()))
            raise UserError(f"{name} on {self.host_id}: {exc}",
                            hint=f"its params and allowed values: {allowed or 'no params'}"
                            ) from None


class ActionTier:
    """One host's action tier, for one call (its trace id goes on every request)."""

    def __init__(self, pool: Pool, host: Host, trace: str | None = None):
        self.pool, self.host, self.trace = pool, host, trace

    def _request(self, verb: str, stdin: bytes | None = None,
                 timeout: float | None = None) -> tuple[int, bytes, bytes]:
        done = self.pool.run(self.host, with_trace(verb, self.trace), tier="pra", stdin=stdin,
                             timeout=timeout)
        if done.exit_code == EXIT_REFUSED:
            refusal = refusal_line(done.stderr)
            if refusal is not None:
                raise ActionRefused(refusal)
        if done.truncated:
            raise ProtocolError(f"pra-exec {verb}: the answer was cut at the client's cap")
        return done.exit_code, done.stdout, done.stderr

    def catalog(self) -> Catalog:
        code, out, err = self._request("list")
        if code != 0:
            raise ProtocolError(f"pra-exec list failed (exit {code}): "
                                f"{err.decode('utf-8', 'replace').strip()[:300]}")
        try:
            return Catalog.of(json.loads(out))
        except ValueError:
            raise ProtocolError(f"pra-exec list did not answer JSON: {out[:200]!r}") from None

    def run(self, document: str, signatures: list[str], timeout: float,
            step: int = 0) -> dict[str, Any]:
        """Send the signed envelope for `step`; the result (outcome changed,
        already-satisfied or failed), or ActionRefused when the target refused it before
        running anything."""
        code, out, err = self._request("run", envelope(document, signatures, step, self.trace),
                                       timeout)
        if code not in RESULT_EXITS:
            raise ProtocolError(f"pra-exec run ended with exit {code}: "
                                f"{err.decode('utf-8', 'replace').strip()[:300]}")
        try:
            result = json.loads(out)
        except ValueError:
            raise ProtocolError(f"pra-exec run did not answer JSON: {out[:200]!r}") from None
        if not isinstance(result, dict) or result.get("outcome") not in (
                "changed", "already-satisfied", "failed"):
            raise ProtocolError(f"pra-exec run answered no outcome: {out[:200]!r}")
        return result


def envelope(document: str, signatures: list[str], step: int = 0,
             trace: str | None = None) -> bytes:
    """pra-run's stdin: v2 `{document, signatures, step, trace}`; a v1 document (an approval
    a schema-1 store signed before the upgrade) goes in the v1 envelope, with its one
    signature, for as long as targets accept it."""
    if json.loads(document).get("v") == 1:
        data: dict[str, Any] = {"document": document, "signature": signatures[0]}
    else:
        data = {"document": document, "signatures": signatures, "step": step}
    if trace is not None:
        data["trace"] = trace
    return json.dumps(data).encode()


def recorded_attempt(pool: Pool, host: Host, nonce: str, since: int,
                     trace: str | None = None) -> dict[str, Any] | None:
    """pra-run's own record of the accepted attempt with this nonce, read from the target's
    journal through the read tier (root's records only: _UID=0), or None if there is none."""
    out = Target(pool, host, trace).run(argv("action_record", nonce=nonce, since=since))
    if out.status != "ok":
        raise ProtocolError(f"the read tier could not search the journal: {out.status} "
                            f"{out.refusal.reason if out.refusal else out.stderr[:200]}")
    for line in out.stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if (isinstance(record, dict) and record.get("nonce") == nonce
                and record.get("decision") == "accepted" and record.get("outcome")):
            return record
    return None
