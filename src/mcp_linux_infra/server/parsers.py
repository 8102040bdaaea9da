"""Command output -> data. Pure functions of text, tolerant: a line they cannot read is
skipped, never fatal, because the raw output is one tool call away (run_diagnostic)."""

import json
import re

from mcp_linux_infra.server.times import iso, offset_time

PSEUDO_FS = frozenset({"tmpfs", "devtmpfs", "squashfs", "ramfs", "efivarfs", "proc", "sysfs",
                       "devpts", "cgroup", "cgroup2", "autofs", "mqueue", "debugfs", "tracefs"})


def _num(text: str) -> float | int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and "." not in text else value


def loadavg(text: str) -> dict:
    """/proc/loadavg: `0.10 0.20 0.30 2/146 79`."""
    parts = text.split()
    if len(parts) < 4:
        return {}
    running, _, total = parts[3].partition("/")
    return {"load1": float(parts[0]), "load5": float(parts[1]), "load15": float(parts[2]),
            "runnable": int(running), "processes": int(total or 0)}


def meminfo(text: str) -> dict:
    """/proc/meminfo in bytes, with the used share of memory and swap."""
    kb = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        value = rest.split()
        if value and value[0].isdigit():
            kb[key.strip()] = int(value[0]) * (1024 if len(value) > 1 else 1)
    total, available = kb.get("MemTotal", 0), kb.get("MemAvailable", kb.get("MemFree", 0))
    swap_total, swap_free = kb.get("SwapTotal", 0), kb.get("SwapFree", 0)
    return {"total_bytes": total, "available_bytes": available,
            "used_pct": round(100 * (total - available) / total, 1) if total else None,
            "swap_total_bytes": swap_total, "swap_used_bytes": swap_total - swap_free,
            "swap_used_pct": round(100 * (swap_total - swap_free) / swap_total, 1)
            if swap_total else 0.0}


def df(text: str) -> list[dict]:
    """`df -P -T -B1`, pseudo filesystems left out."""
    rows = []
    for line in text.splitlines()[1:]:
        parts = line.split(None, 6)
        if len(parts) < 7 or parts[1] in PSEUDO_FS or not parts[2].isdigit():
            continue
        size, used, avail = int(parts[2]), int(parts[3]), int(parts[4])
        rows.append({"mount": parts[6], "filesystem": parts[0], "type": parts[1],
                     "size_bytes": size, "used_bytes": used, "available_bytes": avail,
                     "used_pct": round(100 * used / (used + avail), 1) if used + avail else 0.0})
    return rows


def units(text: str) -> list[dict]:
    """`systemctl list-units --plain --no-legend`: unit load active sub description."""
    rows = []
    for line in text.splitlines():
        parts = line.lstrip("●* ").split(None, 4)
        if len(parts) >= 4:
            rows.append({"unit": parts[0], "load": parts[1], "active": parts[2],
                         "sub": parts[3], "description": parts[4] if len(parts) > 4 else ""})
    return rows


def show(text: str) -> list[dict]:
    """`systemctl show` of one or more units: blocks of KEY=value, blank-line separated."""
    blocks, current = [], {}
    for line in text.splitlines() + [""]:
        if not line.strip():
            if current:
                blocks.append(current)
            current = {}
            continue
        key, eq, value = line.partition("=")
        if eq:
            current[key] = value
    return blocks


_SS_STATES = frozenset({"LISTEN", "UNCONN", "ESTAB", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1",
                        "FIN-WAIT-2", "TIME-WAIT", "CLOSE-WAIT", "LAST-ACK", "CLOSING",
                        "CLOSED"})


def listening(text: str, proto: str | None = None) -> list[dict]:
    """`ss -H -l -n`: [netid] state recv-q send-q local peer [process]; ss prints the netid
    column only when asked for more than one protocol, so `proto` names it otherwise."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] in _SS_STATES:
            parts.insert(0, proto or "?")
        if len(parts) < 6:
            continue
        address, _, port = parts[4].rpartition(":")
        rows.append({"proto": parts[0], "state": parts[1], "address": address.strip("[]"),
                     "port": int(port) if port.isdigit() else port,
                     "process": " ".join(parts[6:]) or None})
    return rows


_JOURNAL = re.compile(r"^(\S+)\s+([^:\[]+?)(?:\[(\d+)\])?:\s(.*)$")


def journal(text: str) -> list[dict]:
    """`journalctl -o short-iso --no-hostname`: time, identifier[pid]: message."""
    rows = []
    for line in text.splitlines():
        match = _JOURNAL.match(line)
        if match:
            rows.append({"time": offset_time(match.group(1)), "source": match.group(2),
                         "pid": int(match.group(3)) if match.group(3) else None,
                         "message": match.group(4)})
        elif line.strip() and not line.startswith("-- "):
            rows.append({"time": None, "source": None, "pid": None, "message": line})
    return rows


def _journal_value(value: object) -> str | None:
    """A field of `journalctl -o json`: a string; an array of byte values when it is not
    valid UTF-8 or not printable; an array of those when the entry has the field more than
    once (the first is kept); null when larger than journalctl's limit."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(
            type(b) is int and 0 <= b < 256 for b in value):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, list) and value:
        return _journal_value(value[0])
    return None


def _journal_time(value: object) -> str | None:
    """`__REALTIME_TIMESTAMP` (microseconds since the epoch) as ISO 8601 UTC."""
    text = _journal_value(value)
    if not text or not text.isdigit():
        return None
    try:
        return iso(int(text) / 1_000_000)
    except (OverflowError, OSError, ValueError):
        return None


def journal_json(text: str) -> list[dict]:
    """`journalctl -o json`, one object a line: time (ISO 8601 UTC), unit (the unit the
    entry is about, UNIT, else the one that logged it, _SYSTEMD_UNIT), identifier,
    priority (0-7) and message. A line that is not an object (cut by the target's output
    cap) is skipped; a missing field is None."""
    rows = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        priority = _journal_value(entry.get("PRIORITY"))
        rows.append({"time": _journal_time(entry.get("__REALTIME_TIMESTAMP")),
                     "unit": _journal_value(entry.get("UNIT"))
                     or _journal_value(entry.get("_SYSTEMD_UNIT")),
                     "identifier": _journal_value(entry.get("SYSLOG_IDENTIFIER")),
                     "priority": int(priority) if priority in tuple("01234567") else None,
                     "message": _journal_value(entry.get("MESSAGE"))})
    return rows


def processes(text: str) -> list[dict]:
    """`ps -e -o pid,user,pcpu,pmem,rss,etimes,stat,args`."""
    rows = []
    for line in text.splitlines()[1:]:
        parts = line.split(None, 7)
        if len(parts) < 8 or not parts[0].isdigit():
            continue
        args = parts[7]
        rows.append({"pid": int(parts[0]), "user": parts[1], "cpu_pct": _num(parts[2]),
                     "mem_pct": _num(parts[3]), "rss_kb": _num(parts[4]),
                     "elapsed_s": _num(parts[5]), "state": parts[6],
                     "name": args.split()[0].rsplit("/", 1)[-1].rstrip(":") if args else "",
                     "command": args[:200]})
    return rows


def columns(text: str) -> list[dict]:
    """A table whose header words start its columns (docker/podman ps)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=\s{2}))\S", header)]
    names = [header[s:e].strip().lower().replace(" ", "_")
             for s, e in zip(starts, starts[1:] + [None])]
    return [{n: line[s:e].strip() for n, s, e in zip(names, starts, starts[1:] + [None])}
            for line in lines[1:]]


_APT = re.compile(r"^(\S+?)/(\S+)\s+(\S+)\s+(\S+)(?:\s+\[upgradable from: (\S+)\])?")


def apt_upgradable(text: str) -> list[dict]:
    """`apt list --upgradable`: name/suites version arch [upgradable from: old]."""
    rows = []
    for line in text.splitlines():
        match = _APT.match(line)
        if match:
            suites = match.group(2)
            rows.append({"package": match.group(1), "suites": suites,
                         "version": match.group(3), "arch": match.group(4),
                         "from": match.group(5), "security": "security" in suites})
    return rows


def getent_addresses(text: str) -> list[str]:
    """`getent ahosts NAME`: the distinct addresses, in order."""
    return list(dict.fromkeys(line.split()[0] for line in text.splitlines() if line.split()))


def _json_list(text: str) -> list:
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def interfaces(text: str) -> list[dict]:
    """`ip -j address`: each link's name, state, MTU, MAC and addresses (ADDRESS/PREFIX)."""
    return [{"name": i.get("ifname"), "state": i.get("operstate"), "mtu": i.get("mtu"),
             "mac": i.get("address"),
             "addresses": [f"{a.get('local')}/{a.get('prefixlen')}"
                           for a in i.get("addr_info", [])]}
            for i in _json_list(text) if isinstance(i, dict)]


def routes(*texts: str) -> list[dict]:
    """`ip -j route` (and `ip -j -6 route`): destination, gateway, device, source."""
    return [{"dst": r.get("dst"), "via": r.get("gateway"), "dev": r.get("dev"),
             "src": r.get("prefsrc")}
            for text in texts for r in _json_list(text) if isinstance(r, dict)]


def nameservers(text: str) -> list[str]:
    """resolv.conf: the addresses of its `nameserver` lines."""
    return [line.split()[1] for line in text.splitlines()
            if line.startswith("nameserver") and len(line.split()) > 1]
