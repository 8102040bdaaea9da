"""Lines of a text file the host's path rules allow."""

from typing import Annotated

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.commands import argv
from mcp_linux_infra.server.answers import checked, ran
from mcp_linux_infra.server.args import DEFAULT_FORMAT, FormatArg, Path
from mcp_linux_infra.server.formatting import render
from mcp_linux_infra.server.schemas import shape
from mcp_linux_infra.server.toolcall import READ_ONLY, Call, tool


@tool(READ_ONLY, title="Read a file",
      output=shape("path", "start_line", "lines", "more"))
def read_file(call: Call, host: Host, path: Path,
              start_line: Annotated[int, Field(ge=1, le=1_000_000)] = 1,
              max_lines: Annotated[int, Field(ge=1, le=2000)] = 200,
              format: FormatArg = DEFAULT_FORMAT) -> CallToolResult:
    """Lines of a text file under the host's allowed roots."""
    # head from the top, tail +N further down: the target's output cap then applies
    # from the first line asked for, not from the top of the file
    words = (argv("file_head", lines=max_lines + 1, path=path) if start_line == 1
             else argv("file_from", start=start_line, path=path))
    out = checked(call, host, call.target(host).run(words))
    if out.exit_code != 0:
        raise ToolError(f"reading {path} on {host.name} failed: {out.stderr.strip()[:300]}")
    lines = out.stdout.splitlines()
    return render({**ran(host, out), "path": path, "start_line": start_line,
                   "lines": lines[:max_lines],
                   "more": len(lines) > max_lines or out.truncated}, format)
