"""The doctor's checks, as data: each a name, what it asks, and a function of one host's
`Facts` that answers ok, warn or fail with a one-line why.

The facts are the target's own answers (its host key, `mcp:version`, `mcp:session`'s hello,
`pra-exec list`, its clock through the read tier), fetched once per host and shared by the
checks; a fact that could not be fetched fails every check that needs it, with the reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from mcp_linux_infra import __version__
from mcp_linux_infra.approvals.action_tier import ActionRefused, ActionTier, Catalog
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.commands import argv
from mcp_linux_infra.readonly.protocol import ProtocolError, Target, refusal_line
from mcp_linux_infra.ssh.errors import SSHError, Unreachable
from mcp_linux_infra.ssh.hostkeys import fingerprint
from mcp_linux_infra.ssh.pool import Pool

Status = Literal["ok", "warn", "fail"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail")
# Clock skew: a warning above this share of the host's max_window_seconds (the approval
# window a document may have), a failure above half of it (a document approved now would
# be refused not_yet_valid or expired for much of its window).
SKEW_WARN_FRACTION = 0.05
SKEW_FAIL_FRACTION = 0.5
# What a fetch may raise: the target's or the network's fault, never the doctor's.
FETCH_ERRORS = (SSHError, ProtocolError, ActionRefused, UserError, OSError)


@dataclass(frozen=True)
class Result:
    check: str
    status: Status
    why: str


class Problem(Exception):
    """A check's non-ok answer: raise Problem(status, why)."""

    def __init__(self, status: Status, why: str):
        super().__init__(why)
        self.status = status


class Facts:
    """One host's answers, each fetched at most once (cached, failure included)."""

    def __init__(self, pool: Pool, host: Host, operators: frozenset[str], timeout: float):
        self.pool, self.host, self.operators, self.timeout = pool, host, operators, timeout
        self._answers: dict[str, tuple[bool, Any]] = {}

    def _fetch(self, name: str, fetch: Callable[[], Any]) -> Any:
        if name not in self._answers:
            try:
                self._answers[name] = (True, fetch())
            except FETCH_ERRORS as exc:
                self._answers[name] = (False, exc)
        ok, value = self._answers[name]
        if not ok:
            raise Problem("fail", str(value))
        return value

    def failure(self, name: str) -> BaseException | None:
        """Why the fact `name` could not be fetched, if it was tried and failed."""
        ok, value = self._answers.get(name, (True, None))
        return None if ok else value

    @cached_property
    def target(self) -> Target:
        return Target(self.pool, self.host)

    def host_key(self) -> str:
        """The presented key, checked against known_hosts (never added)."""
        def fetch() -> str:
            route, key = self.pool.presented_key(self.host)
            self.pool.known_hosts.verify(route.target, key)
            return f"{key.get_name()} {fingerprint(key)}"
        return self._fetch("host_key", fetch)

    def route(self) -> tuple[str, tuple[str, ...]]:
        """How the host is reached, with the known_hosts files its hops are checked
        against, and the notes on ssh arguments that are not honoured."""
        def fetch() -> tuple[str, tuple[str, ...]]:
            way = self.pool.route(self.host)
            files = ", ".join(map(str, self.pool.known_hosts.files(way.target)))
            return f"{way.describe()}; known_hosts: {files}", way.notes
        return self._fetch("route", fetch)

    def version(self) -> dict[str, Any]:
        return self._fetch("version", self.target.version)

    def catalog(self) -> Catalog:
        return self._fetch("catalog", lambda: ActionTier(self.pool, self.host).catalog())

    def hello(self) -> dict[str, Any]:
        """`mcp:session`'s hello, on a channel of its own whose input ends at once."""
        def fetch() -> dict[str, Any]:
            done = self.pool.run(self.host, "mcp:session", timeout=self.timeout)
            refusal = refusal_line(done.stderr)
            if refusal is not None:
                raise ProtocolError(f"refused: {refusal.reason} ({refusal.detail})")
            first = done.stdout.split(b"\n", 1)[0]
            try:
                hello = json.loads(first)["mcp_session"]
                return dict(hello)
            except (ValueError, KeyError, TypeError):
                raise ProtocolError(f"no session hello: {first[:120]!r}") from None
        return self._fetch("hello", fetch)

    def skew(self) -> float:
        """Target clock minus local clock, seconds (local time taken mid-request)."""
        def fetch() -> float:
            before = time.time()
            out = self.target.run(argv("clock"))
            after = time.time()
            if out.status != "ok" or out.exit_code != 0:
                raise ProtocolError(f"date answered {out.status} (exit {out.exit_code})")
            try:
                return float(out.stdout.strip()) - (before + after) / 2
            except ValueError:
                raise ProtocolError(f"date answered {out.stdout[:60]!r}") from None
        return self._fetch("skew", fetch)


def host_key(f: Facts) -> str:
    return f"trusted: {f.host_key()}"


def route(f: Facts) -> str:
    text, notes = f.route()
    if notes:
        raise Problem("warn", f"{text}; " + "; ".join(notes))
    return text


def reader_key(f: Facts) -> str:
    f.version()
    return f"{f.pool.settings.reader_user} authenticated; the wrapper answered mcp:version"


def action_key(f: Facts) -> str:
    catalog = f.catalog()
    return (f"{f.pool.settings.pra_user} authenticated; pra-exec list: "
            f"{len(catalog.actions)} action(s) on host id {catalog.host_id}")


def versions(f: Facts) -> str:
    answer = f.version()
    version, sha = str(answer.get("version")), str(answer.get("policy_sha256"))
    text = f"{answer.get('name')} {version}, policy sha256 {sha[:16]}"
    if version != __version__:
        raise Problem("warn", f"{text}; this client is {__version__}: deploy its role")
    return text


def sessions(f: Facts) -> str:
    try:
        hello = f.hello()
    except Problem as exc:
        raise Problem("warn", f"no sessions, each request starts the wrapper: {exc}") from None
    return (f"mcp:session: idle {hello.get('idle_s')} s, up to {hello.get('max_requests')} "
            f"requests, {hello.get('max_s')} s")


def principals(f: Facts) -> str:
    deployed = f.catalog().principals
    if deployed is None:
        raise Problem("warn", "the target does not report its allowed_signers principals "
                              "(an older target tier): redeploy the role")
    missing = sorted(f.operators - set(deployed))
    unknown = sorted(set(deployed) - f.operators)
    problems = ([f"registered but not deployed: {', '.join(missing)}"] if missing else []) + \
        ([f"deployed but not registered here: {', '.join(unknown)}"] if unknown else [])
    if problems:
        raise Problem("warn", "; ".join(problems))
    return f"{len(deployed)} principal(s), as registered: {', '.join(deployed) or 'none'}"


def clock(f: Facts) -> str:
    skew = f.skew()
    window = f.catalog().max_window
    text = f"target clock {skew:+.1f} s from this machine's (max window {window} s)"
    if abs(skew) > window * SKEW_FAIL_FRACTION:
        raise Problem("fail", text)
    if abs(skew) > window * SKEW_WARN_FRACTION:
        raise Problem("warn", text + ": fix NTP")
    return text


def approval_rules(f: Facts) -> str:
    catalog = f.catalog()
    s = catalog.settings
    if "min_approvals" not in s:
        raise Problem("fail", "no approval rules in the catalog (a target tier older than "
                              "approval documents v2): redeploy the role")
    needed = {name: catalog.required(name) for name in catalog.actions}
    most = max(needed.values(), default=0)
    rules = [f"min_approvals {s['min_approvals']}",
             f"user verification {'required' if s.get('require_user_verification') else 'no'}",
             f"signers {s.get('signers', 'any')}"]
    if s.get("webauthn_origins"):
        rules.append(f"origins {', '.join(map(str, s['webauthn_origins']))}")
    more = sorted(n for n, k in needed.items() if k > 1)
    if more:
        rules.append(f"{len(more)} action(s) need up to {most} approvals")
    text = "; ".join(rules)
    if most > len(f.operators):
        raise Problem("warn", f"{text}; only {len(f.operators)} operator(s) registered here")
    return text


@dataclass(frozen=True)
class Check:
    name: str
    asks: str
    run: Callable[[Facts], str]


CHECKS: tuple[Check, ...] = (
    Check("host_key", "the host key is in known_hosts", host_key),
    Check("route", "ProxyJump / ProxyCommand, and ssh arguments not honoured", route),
    Check("reader_key", "the read-tier key authenticates", reader_key),
    Check("action_key", "the action-tier key authenticates", action_key),
    Check("versions", "wrapper and policy versions", versions),
    Check("sessions", "the wrapper offers mcp:session", sessions),
    Check("principals", "allowed_signers against the operators registry", principals),
    Check("clock", "clock skew against the approval window", clock),
    Check("approval_rules", "the action catalog's approval rules", approval_rules),
)


def run_checks(facts: Facts, checks: tuple[Check, ...] = CHECKS) -> list[Result]:
    """Every check on one host; a host that cannot be reached is one failed row."""
    try:
        facts.host_key()
    except Problem as exc:
        if isinstance(facts.failure("host_key"), Unreachable):
            return [Result("reachable", "fail", str(exc))]
    results = []
    for check in checks:
        try:
            results.append(Result(check.name, "ok", check.run(facts)))
        except Problem as exc:
            results.append(Result(check.name, exc.status, str(exc)))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # a target's answer of an unexpected shape (a number that is not one, ...)
            results.append(Result(check.name, "fail", f"unexpected answer from the target: "
                                                      f"{type(exc).__name__}: {exc}"))
    return results
