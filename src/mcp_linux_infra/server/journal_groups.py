"""Journal entries grouped: the same message repeated, or repeated with other numbers, ids
or addresses, is one group with a count, its first and last time and one example, so that a
journal full of one noisy line still shows every other error beside it.

`shape` is the message with its variable parts masked; a group is the entries with the same
unit, identifier and shape. What is shown of a message, unit or identifier (they come from
the target, and any local process may write them) is made visible: no control or format
character reaches a client as it is (display.visible)."""

import ipaddress
import re
from collections.abc import Iterable

from mcp_linux_infra.display import visible

EXAMPLE_MAX = 300  # characters of a group's example message
PRIORITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

_UUID = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}"
                   r"(?![0-9A-Za-z])")
_MAC = re.compile(r"(?<![0-9A-Za-z:-])[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}"
                  r"(?![0-9A-Za-z:-])")
# A run that may be an address (dotted or with colons, an IPv6 zone after %); ipaddress
# decides whether it is one.
_ADDRESS = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f:.]+(?:%[0-9A-Za-z_.-]+)?")
_HEX = re.compile(r"(?<![0-9A-Za-z])(?:0[xX][0-9A-Fa-f]+|[0-9A-Fa-f]{8,})(?![0-9A-Za-z])")
_NUMBER = re.compile(r"[0-9]+")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _address(match: re.Match) -> str:
    """`<ip>` for an IPv4 or IPv6 address (with an IPv4 address's port after it, and the
    sentence's punctuation kept), the run as it is otherwise."""
    run = match.group()
    if match.end() < len(match.string) and match.string[match.end()].isalnum():
        return run  # part of a longer word: 1.2.3.4ms
    core = run.rstrip(".:")
    tail = run[len(core):]
    if ("." in core or ":" in core) and _is_ip(core):
        return "<ip>" + tail
    host, colon, port = core.rpartition(":")
    if colon and port.isdigit() and "." in host and _is_ip(host):
        return "<ip>:" + port + tail
    return run


def _hex(match: re.Match) -> str:
    """`<hex>` for 0x... and for a run of 8 or more hex digits with both digits and letters
    (a run of digits alone is a number; of letters alone, a word such as `deadbeef`)."""
    run = match.group()
    if run[:2] in ("0x", "0X") or (any(c.isdigit() for c in run)
                                   and any(c.isalpha() for c in run)):
        return "<hex>"
    return run


def shape(message: str) -> str:
    """`message` with UUIDs, MAC addresses, IP addresses, hex ids and then every other run
    of digits (in paths too: /proc/<n>/status) masked."""
    text = _UUID.sub("<uuid>", message)
    text = _MAC.sub("<mac>", text)
    text = _ADDRESS.sub(_address, text)
    text = _HEX.sub(_hex, text)
    return _NUMBER.sub("<n>", text)


def _shown(text: str | None, limit: int | None = None) -> str | None:
    if text is None:
        return None
    shown = visible(text)
    return shown if limit is None or len(shown) <= limit else shown[:limit - 1] + "…"


def _merge(into: dict, other: dict) -> None:
    """Add the group `other` to `into`: counts summed, the earliest first, the latest last
    with its message, the most severe priority (the lowest number)."""
    into["count"] += other["count"]
    if other["first"] is not None and (into["first"] is None or other["first"] < into["first"]):
        into["first"] = other["first"]
    if other["last"] is not None and (into["last"] is None or other["last"] >= into["last"]):
        into["last"], into["message"] = other["last"], other["message"]
    if other["priority"] is not None and (into["priority"] is None
                                          or other["priority"] < into["priority"]):
        into["priority"] = other["priority"]


def _attribute(groups: dict[tuple, dict]) -> None:
    """Entries without a unit join the group of the same identifier and shape when one unit
    alone has it: journald leaves _SYSTEMD_UNIT out when the process that wrote an entry
    exited before journald read its cgroup (logger, a short cron job), so some of a unit's
    lines come without it (measured on a lab target: 8 of 22 lines from logger)."""
    units: dict[tuple, list] = {}
    for unit, *rest in groups:
        if unit is not None:
            units.setdefault(tuple(rest), []).append(unit)
    for key in [k for k in groups if k[0] is None]:
        owners = units.get(key[1:], [])
        if len(owners) == 1:
            _merge(groups[(owners[0], *key[1:])], groups.pop(key))


def group(entries: Iterable[dict]) -> list[dict]:
    """Entries (parsers.journal_json) by unit, identifier and shape of their message: each
    group's count, first and last time, most severe priority and latest message; the most
    frequent first, then the most recent."""
    groups: dict[tuple, dict] = {}
    for entry in entries:
        message = entry.get("message") or ""
        one = {"count": 1, "first": entry.get("time"), "last": entry.get("time"),
               "priority": entry.get("priority"), "message": message}
        key = (entry.get("unit"), entry.get("identifier"), shape(message))
        if key in groups:
            _merge(groups[key], one)
        else:
            groups[key] = one
    _attribute(groups)
    recent = sorted(groups.items(), key=lambda item: item[1]["last"] or "", reverse=True)
    ordered = sorted(recent, key=lambda item: item[1]["count"], reverse=True)  # stable
    return [{"count": g["count"], "unit": _shown(unit), "identifier": _shown(identifier),
             "priority": PRIORITIES[g["priority"]] if g["priority"] is not None else None,
             "first": g["first"], "last": g["last"],
             "example": _shown(g["message"], EXAMPLE_MAX)}
            for (unit, identifier, _), g in ordered]
