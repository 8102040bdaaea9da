"""The doctor's findings: per host, its check results; the exit code, the JSON and the table.

Everything a target said is shown through `display` (plain text, controls made visible):
a host's answer can colour a status cell only through the status the doctor decided.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rich.table import Table

from mcp_linux_infra.display import plain
from mcp_linux_infra.doctor.checks import STATUSES, Result

EXIT_OK, EXIT_FAIL = 0, 1  # 2 is bad usage (an unknown host or group, a bad setting)
STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}


@dataclass(frozen=True)
class HostReport:
    host: str
    results: tuple[Result, ...]

    @property
    def status(self) -> str:
        """The worst status of its checks."""
        return max((r.status for r in self.results), key=STATUSES.index, default="ok")


def totals(reports: list[HostReport]) -> dict[str, int]:
    counted = Counter(r.status for report in reports for r in report.results)
    return {status: counted.get(status, 0) for status in STATUSES}


def exit_code(reports: list[HostReport]) -> int:
    """0 when no check failed (warnings included), 1 when any did."""
    return EXIT_FAIL if any(r.status == "fail" for r in reports) else EXIT_OK


def as_json(reports: list[HostReport]) -> dict:
    return {"hosts": [{"host": rep.host, "status": rep.status,
                       "checks": [{"check": r.check, "status": r.status, "why": r.why}
                                  for r in rep.results]} for rep in reports],
            "totals": totals(reports), "exit_code": exit_code(reports)}


def table(reports: list[HostReport]) -> Table:
    shown = Table(title="doctor")
    for col in ("host", "check", "status", "why"):
        shown.add_column(col, overflow="fold")
    for rep in reports:
        for i, r in enumerate(rep.results):
            shown.add_row(plain(rep.host) if i == 0 else plain(""), plain(r.check),
                          plain(r.status, STYLE[r.status]), plain(r.why),
                          end_section=i == len(rep.results) - 1)
    return shown


def summary(reports: list[HostReport]) -> str:
    counts = totals(reports)
    return (f"{len(reports)} host(s): {counts['ok']} ok, {counts['warn']} warning(s), "
            f"{counts['fail']} failure(s)")
