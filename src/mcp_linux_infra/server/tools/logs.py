"""Log lines from the journal or from a log file."""

from typing import Annotated, Literal

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.commands import argv
from mcp_linux_infra.server import parsers
from mcp_linux_infra.server.answers import checked, ran
from mcp_linux_infra.server.args import ABSOLUTE_PATH, FormatArg, Lines, Since, Unit
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.toolcall import READ_ONLY, Call, tool

Priority = Literal["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]


@tool(READ_ONLY)
def fetch_logs(
    call: Call, host: Host,
    unit: Annotated[Unit | None, Field(description="Journal of this unit")] = None,
    file: Annotated[str | None, Field(
        pattern=ABSOLUTE_PATH,
        description="A log file instead of the journal (must be under the target's "
                    "allowed roots, e.g. /var/log/nginx/error.log)")] = None,
    lines: Lines = 100,
    since: Annotated[Since | None, Field(description="Journal only")] = None,
    pattern: Annotated[str | None, Field(
        min_length=1, max_length=512,
        description="Keep matching lines (regex; the target refuses nested or large "
                    "counted repetition, backreferences and, for the journal, PCRE "
                    "lookaround)")] = None,
    priority: Annotated[Priority | None,
                        Field(description="Journal only: this priority and worse")] = None,
    format: FormatArg = "json",
) -> CallToolResult:
    """Recent log lines from the journal (optionally one unit, a time range, a
    priority) or from a log file, optionally filtered by a pattern."""
    if file and unit:
        raise ToolError("give either unit (journal) or file, not both")
    if file:
        if since or priority:
            raise ToolError("since and priority apply to the journal only; for a file "
                            "use pattern and lines")
        words = (argv("file_matches", pattern=pattern, path=file) if pattern
                 else argv("file_tail", lines=lines, path=file))
    else:
        words = argv("journal", lines=lines, unit=unit, since=since, priority=priority,
                     pattern=pattern)
    out = checked(call, host, call.target(host).run(words))
    if file:
        if out.exit_code not in (0, 1):
            raise ToolError(f"reading {file} on {host.name} failed: {out.stderr.strip()[:300]}")
        entries = [{"line": line} for line in out.stdout.splitlines()[-lines:]]
    else:
        if out.exit_code not in (0, 1):
            raise ToolError(f"journalctl failed on {host.name}: {out.stderr.strip()[:300]}")
        entries = parsers.journal(out.stdout)
    return render({**ran(host, out), "count": len(entries), "entries": entries}, format)
