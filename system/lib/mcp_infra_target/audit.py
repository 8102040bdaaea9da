"""One audit record per request, on syslog facility authpriv.

The restricted user owns no writable log, so the record goes to syslog (journald keeps it
root-owned). A failing log must never change the answer to a request: every error is
swallowed. Records are single-line JSON with every non-printable character escaped.
"""

import base64
import binascii
import json
import os
import syslog

from .digest import sha256

MAX_FIELD_CHARS = 8192


def escape(text):
    """JSON-escape `text` (every byte outside printable ASCII becomes an escape), capped."""
    if len(text) > MAX_FIELD_CHARS:
        text = text[:MAX_FIELD_CHARS] + "...[cut]"
    return json.dumps(text, ensure_ascii=True)[1:-1]


def key_fingerprint(user_auth_path):
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


def client_fields(environ):
    """Who asked: client address and port from SSH_CONNECTION, key fingerprint if exposed."""
    parts = environ.get("SSH_CONNECTION", "").split()
    return {
        "client": parts[0] if len(parts) == 4 else None,
        "client_port": parts[1] if len(parts) == 4 else None,
        "key": key_fingerprint(environ.get("SSH_USER_AUTH")),
        "user": environ.get("USER") or environ.get("LOGNAME"),
    }


def format_record(fields):
    """Serialise a record as one ASCII line (strings escaped, keys sorted)."""
    return json.dumps(fields, ensure_ascii=True, sort_keys=True, default=str)


def record(ident, fields, warning=False, file_path=None):
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
