"""Log lines from the journal or from a log file."""

from typing import Annotated, Literal

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.commands import argv
from mcp_linux_infra.server import parsers
from mcp_linux_infra.server.answers import checked, ran
from mcp_linux_infra.server.args import DEFAULT_FORMAT, FormatArg, Lines, Path, Since, Unit
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.schemas import shape
from mcp_linux_infra.server.toolcall import READ_ONLY, Call, tool

Priority = Literal["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]


@tool(READ_ONLY, title="Fetch logs",
      output=shape("count", "entries"))
def fetch_logs(
    call: Call, host: Host,
    unit: Unit | None = None,
    file: Annotated[Path | None, Field(description="A log file instead of the journal")] = None,
    lines: Lines = 100,
    since: Since | None = None,
    pattern: Annotated[str | None, Field(min_length=1, max_length=512,
                                         description="Regex: keep matching lines")] = None,
    priority: Annotated[Priority | None, Field(description="And worse")] = None,
    format: FormatArg = DEFAULT_FORMAT,
) -> CallToolResult:
    """Journal lines (of a unit, since, priority) or a log file's, optionally matching a
    pattern."""
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
