"""Results sent once: the data as structured content (checked by clients against the tool's
output schema), and as text either a one-line summary (json, the default) or the same data
for a model that reads only text (toon: fewer tokens; text: aligned for a person)."""

import json
from collections.abc import Callable
from typing import Any

import toon_format
from mcp.types import CallToolResult, TextContent

from mcp_linux_infra.server.args import DEFAULT_FORMAT, Format


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


SUMMARY_CELL = 60  # longer values are left to the structured content
SUMMARY_MAX = 400
SUMMARY_INLINE = 4  # a mapping of at most this many keys is shown inline
MORE = " (data in structured content; format=toon or text repeats it as text)"


def _brief(data: dict, nested: bool = False) -> list[str]:
    parts = []
    for key, value in data.items():
        if isinstance(value, list):
            parts.append(f"{key}: {len(value)}")
        elif isinstance(value, dict):
            inner = _brief(value, True) if not nested and 0 < len(value) <= SUMMARY_INLINE else None
            parts.append(f"{key}({', '.join(inner)})" if inner else f"{key}: {len(value)} keys")
        elif 0 < len(cell := _cell(value)) <= SUMMARY_CELL and "\n" not in cell:
            parts.append(f"{key}={cell}")
    return parts


def summary(data: dict) -> str:
    """One line that says what the result holds: short values, and counts of lists and
    mappings (one level down); the data itself is in the structured content."""
    line = ", ".join(_brief(data))
    return (line if len(line) <= SUMMARY_MAX else line[:SUMMARY_MAX - 1] + "…") + MORE


def render(data: dict, fmt: Format = DEFAULT_FORMAT,
           toon_view: Callable[[dict], dict] | None = None) -> CallToolResult:
    """`toon_view` reshapes the data for TOON only, where nesting would keep TOON from
    printing tables; it must come with an exact inverse (see diagnose_view)."""
    if fmt == "toon":
        text = toon_format.dumps(toon_view(data) if toon_view else data)
    elif fmt == "text":
        text = as_text(data)
    else:
        text = summary(data)
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=data)
