"""pra-run's audit trail: one JSON line per attempt in a root-owned file, and on syslog.

The file is opened (O_APPEND, O_NOFOLLOW) before any input is read, so an attempt that could
not be logged never runs anything. Each line is written with one write() and fsynced; it is
capped (audit.format_record, RECORD_MAX_BYTES) like every other record. Opened afresh by each
attempt, the file may be rotated by logrotate's `create` (system/logrotate.d/mcp-infra).
"""
from __future__ import annotations

import os
import stat
from typing import Any

from mcp_infra_target.core import audit
from mcp_infra_target.core.bootstrap import UntrustedPath, check_entry
from mcp_infra_target.core.refusal import Refusal

LOG_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class AttemptLog:
    """The open log file of one pra-run process."""

    def __init__(self, path: str, syslog_file: str | None = None):
        self.syslog_file = syslog_file
        try:
            self.fd = os.open(path, LOG_FLAGS, 0o640)
        except OSError:
            raise Refusal("config_error", "config/log", "cannot open the pra-run log") from None
        info = os.fstat(self.fd)
        try:
            if not stat.S_ISREG(info.st_mode):
                raise UntrustedPath(f"{path}: not a regular file")
            check_entry(path, info, {os.geteuid()}, sticky=False)  # the one ownership rule
        except UntrustedPath:
            os.close(self.fd)
            raise Refusal("config_error", "config/log",
                          "pra-run log not owned by root, or writable by others") from None

    def write(self, record: dict[str, Any]) -> None:
        """Append `record` durably, then send it to syslog (authpriv)."""
        line = audit.format_record(record) + "\n"
        os.write(self.fd, line.encode("ascii"))
        os.fsync(self.fd)
        audit.record("pra-run", record, warning=record.get("decision") != "accepted",
                     file_path=self.syslog_file)


def syslog_only(record: dict[str, Any], syslog_file: str | None = None) -> None:
    """Record an attempt on syslog when the log file itself is unusable."""
    audit.record("pra-run", record, warning=True, file_path=syslog_file)
