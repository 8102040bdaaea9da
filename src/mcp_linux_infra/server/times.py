"""Time in tool results: ISO 8601 in UTC with a `Z`, the one form every answer carries
(the stores keep epoch seconds; a result converts them on the way out)."""

from datetime import UTC, datetime

# A proposal's and an approval's fields that hold epoch seconds.
EPOCH_FIELDS = ("created_at", "updated_at", "not_before", "not_after", "sent_at", "at")


def iso(at: float | None) -> str | None:
    """Epoch seconds as `2026-05-01T10:00:00Z`."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def systemd(text: str | None) -> str | None:
    """A systemd timestamp (`Thu 2026-05-02 10:00:00 UTC`) as ISO 8601 when its zone is UTC;
    any other zone is kept as systemd wrote it (an abbreviation does not name an offset)."""
    if not text:
        return None
    for zone in (" UTC", " GMT"):
        if text.endswith(zone):
            try:
                at = datetime.strptime(text[:-len(zone)], "%a %Y-%m-%d %H:%M:%S")
            except ValueError:
                return text
            return at.isoformat(timespec="seconds") + "Z"
    return text


def offset_time(text: str) -> str:
    """A time with its offset (journalctl's short-iso `2026-05-02T10:00:00+0200`) in UTC."""
    try:
        at = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return text
    return iso(at.timestamp())


def isoed(record: dict) -> dict:
    """A record with its EPOCH_FIELDS as ISO 8601."""
    return {k: iso(v) if k in EPOCH_FIELDS and isinstance(v, (int, float)) else v
            for k, v in record.items()}
