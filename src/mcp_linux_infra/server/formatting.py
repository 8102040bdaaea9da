"""Results as the model asked for them: json (also structured), toon (fewer tokens), text."""

import json
from collections.abc import Callable
from typing import Any

import toon_format
from mcp.types import CallToolResult, TextContent

from mcp_linux_infra.server.args import Format


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


def _table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def as_text(data: Any, indent: str = "") -> str:
    """Mappings as `key: value`, lists of mappings as aligned tables, recursively."""
    if isinstance(data, dict):
        out = []
        for key, value in data.items():
            if isinstance(value, (dict, list)) and value:
                out.append(f"{indent}{key}:")
                out.append(as_text(value, indent + "  "))
            else:
                out.append(f"{indent}{key}: {_cell(value)}")
        return "\n".join(out)
    if isinstance(data, list):
        if data and all(isinstance(row, dict) for row in data) and all(
                not isinstance(v, (dict, list)) or not v for row in data for v in row.values()):
            return "\n".join(indent + line for line in _table(data).splitlines())
        return "\n".join(indent + "- " + as_text(v, indent + "  ").lstrip() for v in data)
    if isinstance(data, str) and "\n" in data:
        return "\n".join(indent + line for line in data.rstrip("\n").splitlines())
    return indent + _cell(data)


def render(data: dict, fmt: Format = "json",
           toon_view: Callable[[dict], dict] | None = None) -> CallToolResult:
    """`toon_view` reshapes the data for TOON only, where nesting would keep TOON from
    printing tables; it must come with an exact inverse (see diagnose_view)."""
    if fmt == "toon":
        view = toon_view(data) if toon_view else data
        return CallToolResult(content=[TextContent(type="text", text=toon_format.dumps(view))])
    if fmt == "text":
        return CallToolResult(content=[TextContent(type="text", text=as_text(data))])
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(data))],
                          structured_content=data)
