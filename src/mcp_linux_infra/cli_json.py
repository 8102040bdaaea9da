"""The CLI's one `--json` convention, for scripts: one JSON object on stdout and nothing else
there (notes go to stderr); a listing under a plural key ({"hosts": [...]}); values as data
(numbers as numbers, lists as lists, times as ISO 8601 in UTC, paths as strings). ASCII only:
a value from a host, the model or a file reaches a terminal as an escape, never a control."""

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HELP = "one JSON object on stdout, for scripts (times in ISO 8601, UTC)"


def iso(stamp: float | str | None) -> str | None:
    """A Unix time as ISO 8601 in UTC (a time already in text is kept as it is)."""
    if stamp is None or isinstance(stamp, str):
        return stamp
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


def _data(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON data: {type(value).__name__}")


def emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_data) + "\n")
