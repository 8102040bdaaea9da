"""Run the checks on many hosts at once: a bounded pool of threads (settings'
fanout_concurrency), every request bounded by the timeout, one report per host in
inventory order."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from mcp_linux_infra.doctor.checks import CHECKS, Check, Facts, Result, run_checks
from mcp_linux_infra.doctor.report import HostReport
from mcp_linux_infra.inventory import Host
from mcp_linux_infra.settings import Settings
from mcp_linux_infra.ssh.hostkeys import KnownHosts
from mcp_linux_infra.ssh.pool import Pool


def doctor(settings: Settings, hosts: list[Host], operators: frozenset[str], timeout: float,
           checks: tuple[Check, ...] = CHECKS,
           done: Callable[[HostReport], None] = lambda report: None) -> list[HostReport]:
    """Each host's report; `done` is called as each host finishes (progress).

    The doctor's pool sends reader requests on channels of their own (the sessions check
    asks for `mcp:session` itself) and never records a host key, whatever host_key_policy
    says: it reports, it does not trust."""
    settings = settings.model_copy(update={"reader_sessions": 0,
                                           "connect_timeout": min(settings.connect_timeout,
                                                                  timeout),
                                           "command_timeout": timeout})
    pool = Pool(settings, KnownHosts(settings.known_hosts, accept_new=False))

    def one(host: Host) -> HostReport:
        try:
            results = run_checks(Facts(pool, host, operators, timeout), checks)
        except Exception as exc:  # noqa: BLE001 - a bug in one check is one row, not a crash
            results = [Result("doctor", "fail", f"internal error: {type(exc).__name__}: {exc}")]
        report = HostReport(host.name, tuple(results))
        done(report)
        return report

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(settings.fanout_concurrency,
                                                       len(hosts))),
                                thread_name_prefix="doctor") as workers:
            return list(workers.map(one, hosts))
    finally:
        pool.close()
