"""One audit record per request, on syslog facility authpriv.

The restricted user owns no writable log, so the record goes to syslog (journald keeps it
root-owned). A failing log must never change the answer to a request: every error is
swallowed. Records are single-line JSON with every non-printable character escaped.

Every record of every tool (mcp-wrapper, pra-exec, pra-run: syslog and pra-run's file) is
formatted by `format_record`, which caps it: no string longer than FIELD_MAX_BYTES once
escaped, no line longer than RECORD_MAX_BYTES. A cut string ends with CUT_MARKER and the
record's `record_cut` names it with its full length and SHA-256.
"""

import base64
import binascii
import json
import os
import syslog

from mcp_infra_target.core.digest import sha256

RECORD_MAX_BYTES = 16384
FIELD_MAX_BYTES = 4096
# when the line is still too long, every string is cut again at the next limit
FIELD_LIMITS = (FIELD_MAX_BYTES, 512, 64)
CUT_MARKER = "...[cut]"
CUT_NOTES_MAX = 8
PATH_MAX_CHARS = 128


def escape(text: str) -> str:
    """JSON-escape `text` (every byte outside printable ASCII becomes an escape); the record
    cap (format_record) bounds its length."""
    return json.dumps(text, ensure_ascii=True)[1:-1]


def key_fingerprint(user_auth_path: "str | None") -> "str | None":
    """SHA256 fingerprint of the public key sshd recorded (ExposeAuthInfo), or None.

    sshd writes lines like `publickey ssh-ed25519 AAAA...` to the file named by
    SSH_USER_AUTH; the last publickey line is the one that authenticated the session.
    """
    if not user_auth_path:
        return None
    try:
        with open(user_auth_path, "r", encoding="ascii", errors="replace") as handle:
            lines = handle.read(65536).splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "publickey":
            try:
                blob = base64.b64decode(parts[2], validate=True)
            except (binascii.Error, ValueError):
                return None
            digest = base64.b64encode(sha256(blob).digest()).decode("ascii")
            return "SHA256:" + digest.rstrip("=")
    return None


def client_fields(environ: dict) -> dict:
    """Who asked: client address and port from SSH_CONNECTION, key fingerprint if exposed."""
    parts = environ.get("SSH_CONNECTION", "").split()
    return {
        "client": parts[0] if len(parts) == 4 else None,
        "client_port": parts[1] if len(parts) == 4 else None,
        "key": key_fingerprint(environ.get("SSH_USER_AUTH")),
        "user": environ.get("USER") or environ.get("LOGNAME"),
    }


def _dumps(fields):
    return json.dumps(fields, ensure_ascii=True, sort_keys=True, default=str)


def _escaped_bytes(text):
    return len(json.dumps(text, ensure_ascii=True)) - 2


def _cut(text, limit):
    """The longest prefix of `text` that fits `limit` escaped bytes with the marker after it."""
    room = limit - len(CUT_MARKER)
    low, high = 0, max(0, min(len(text), room))
    while low < high:
        middle = (low + high + 1) // 2
        if _escaped_bytes(text[:middle]) <= room:
            low = middle
        else:
            high = middle - 1
    return text[:low] + CUT_MARKER


def _capped(value, limit, path, cuts):
    """`value` with every string over `limit` escaped bytes cut; cut ones appended to `cuts`."""
    if isinstance(value, dict):
        return {key: _capped(item, limit, path + (str(key),), cuts) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_capped(item, limit, path + (str(i),), cuts) for i, item in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    # an escape is at most 12 bytes per character (a surrogate pair)
    if len(text) * 12 <= limit or _escaped_bytes(text) <= limit:
        return text
    cuts.append((".".join(path), text))
    return _cut(text, limit)


def _cut_note(cuts, line, limit):
    fields = [{"field": name[:PATH_MAX_CHARS], "chars": len(text),
               "sha256": sha256(text.encode("utf-8", "surrogatepass")).hexdigest()}
              for name, text in cuts[:CUT_NOTES_MAX]]
    return {"line_bytes": len(line), "field_limit": limit, "fields": fields,
            "more_fields": max(0, len(cuts) - CUT_NOTES_MAX)}


def _fallback(fields, line, max_bytes):
    """The record when cutting strings was not enough: the top-level values that stay small
    once cut at the smallest limit, as many as fit; the rest is named in `record_cut`."""
    note = {"line_bytes": len(line), "line_sha256": sha256(line.encode("ascii")).hexdigest(),
            "dropped": [], "more_dropped": 0}
    kept = {"record_cut": note}
    budget = max_bytes - 1024  # room for the note's names of dropped fields
    for key in sorted(fields, key=str):
        value = _capped(fields[key], FIELD_LIMITS[-1], (str(key),), [])
        size = len(_dumps({str(key): value}))
        if size <= 512 and len(_dumps(kept)) + size <= budget:
            kept[str(key)] = value
        elif len(note["dropped"]) < CUT_NOTES_MAX:
            note["dropped"].append(str(key)[:FIELD_LIMITS[-1]])
        else:
            note["more_dropped"] += 1
    return kept


def format_record(fields: dict, max_bytes: int = RECORD_MAX_BYTES) -> str:
    """Serialise a record as one ASCII line (strings escaped, keys sorted), capped: strings
    over FIELD_MAX_BYTES are cut (smaller limits follow while the line is over `max_bytes`,
    then only small top-level fields are kept); `record_cut` says what was cut."""
    line = _dumps(fields)
    if len(line) <= min(FIELD_MAX_BYTES, max_bytes):
        return line  # no string in it can be over the field limit
    for limit in FIELD_LIMITS:
        cuts = []
        capped = _capped(fields, limit, (), cuts)
        if not cuts:
            candidate = line
        else:
            capped["record_cut"] = _cut_note(cuts, line, limit)
            candidate = _dumps(capped)
        if len(candidate) <= max_bytes:
            return candidate
    return _dumps(_fallback(fields, line, max_bytes))


def record(ident: str, fields: dict, warning: bool = False,
           file_path: "str | None" = None) -> None:
    """Send one record to syslog (authpriv), or append it to `file_path` (tests only)."""
    try:
        line = format_record(fields)
        if file_path is not None:
            fd = os.open(file_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, (line + "\n").encode("ascii"))
            finally:
                os.close(fd)
            return
        syslog.openlog(ident, syslog.LOG_PID, syslog.LOG_AUTHPRIV)
        syslog.syslog(syslog.LOG_WARNING if warning else syslog.LOG_INFO, line)
        syslog.closelog()
    except Exception:  # noqa: BLE001 - auditing must never break the request
        pass
