"""Operators: who may approve, under which principal, with which public key.

The registry is a record, not a grant: a target trusts a key only once an administrator
deploys it with the role (`mcp_infra_operators`). The server and the console use it to know
whose signature they are storing and which credential a browser should use; the target
decides anyway, against its own allowed_signers.

In the proposals' database (database.py: state_dir/approvals.sqlite3, or the PostgreSQL
database several servers share), tables of its own: whoever adds an approval, on any server,
checks it against the same operators.
Enrollment tokens are stored only as their SHA-256, used once, and expire. Every refusal is
a `RegistryRefused` with a code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from mcp_linux_infra.approvals.document import NAMESPACE
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.database import Database, SQLite, open_database
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.settings import PRINCIPAL_PATTERN, Settings

PRINCIPAL_RE = re.compile(PRINCIPAL_PATTERN.removesuffix("$") + r"\Z")
# key type of a line -> the operator's kind; the types the target's verifier takes
KINDS = {"ssh-ed25519": "ed25519", "sk-ssh-ed25519@openssh.com": "sk-ed25519",
         "sk-ecdsa-sha2-nistp256@openssh.com": "sk-ecdsa"}
_LINE_RE = re.compile(r"(\S+) ([A-Za-z0-9+/]+={0,3})(?: [ -~]*)?\Z")
_CREDENTIAL_RE = re.compile(r"[A-Za-z0-9_-]{16,1366}\Z")  # base64url, 12..1023 bytes
MAX_TTL = 30 * 86400

_SCHEMA = """
CREATE TABLE IF NOT EXISTS operators (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    public_key TEXT NOT NULL UNIQUE,
    rp_id TEXT,
    credential_id TEXT UNIQUE,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS operators_active ON operators (name) WHERE revoked_at IS NULL;
CREATE TABLE IF NOT EXISTS enrollments (
    token_sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
)
"""


class RegistryRefused(UserError):
    """A refused change or lookup: `code` names the reason, the message says it for people."""

    def __init__(self, code: str, text: str, hint: str | None = None):
        super().__init__(f"{code}: {text}", hint)
        self.code = code
        self.text = text


@dataclass(frozen=True)
class Operator:
    name: str
    kind: str
    public_key: str  # "TYPE BASE64", no comment
    rp_id: str | None
    credential_id: str | None  # base64url, WebAuthn credentials only
    created_at: float
    revoked_at: float | None

    @property
    def key_type(self) -> str:
        return self.public_key.split(" ", 1)[0]

    @property
    def fingerprint(self) -> str:
        """As ssh-keygen -l shows it."""
        blob = base64.b64decode(self.public_key.split(" ", 1)[1])
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
        return f"SHA256:{digest}"

    def allowed_signers_line(self) -> str:
        return f'{self.name} namespaces="{NAMESPACE}" {self.public_key}'

    def ansible_entry(self) -> dict[str, str]:
        """This operator's item of the role's `mcp_infra_operators` list."""
        return {"principal": self.name, "public_key": self.public_key}


def ansible_yaml(operators: list[Operator]) -> str:
    """`mcp_infra_operators:` with one item per operator; JSON strings are YAML scalars."""
    if not operators:
        return "mcp_infra_operators: []\n"
    items = "".join(f"  - principal: {json.dumps(o.name)}\n"
                    f"    public_key: {json.dumps(o.public_key)}\n" for o in operators)
    return "mcp_infra_operators:\n" + items


def check_name(name: str) -> str:
    if not isinstance(name, str) or not PRINCIPAL_RE.match(name):
        raise RegistryRefused("bad_name", f"{name!r} is not an operator name: 1 to 128 "
                              "letters, digits and . _ @ + -, starting with a letter or digit")
    return name


def _strings(blob: bytes) -> list[bytes]:
    """The SSH wire strings a public key blob is made of (RFC 4251)."""
    out, pos = [], 0
    while pos < len(blob):
        if pos + 4 > len(blob):
            raise ValueError("truncated length")
        (size,) = struct.unpack(">I", blob[pos:pos + 4])
        if pos + 4 + size > len(blob):
            raise ValueError("truncated string")
        out.append(blob[pos + 4:pos + 4 + size])
        pos += 4 + size
    return out


def parse_key_line(line: str) -> tuple[str, str, str | None]:
    """`TYPE BASE64 [comment]` -> (the line without its comment, kind, application or None);
    only the key types a target verifies, each decoded and checked field by field."""
    line = line.strip()
    match = _LINE_RE.match(line)
    if not match:
        raise RegistryRefused("bad_key", "not a public key line: expected `TYPE BASE64 "
                              "[comment]` in printable ASCII on one line")
    key_type, text = match.group(1), match.group(2)
    if key_type not in KINDS:
        raise RegistryRefused("unsupported_key_type", f"key type {key_type!r} is not one "
                              f"targets verify: {', '.join(KINDS)}")
    try:
        fields = _strings(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise RegistryRefused("bad_key", f"the key's base64 does not decode: {exc}") from None
    application = None
    try:
        if not fields or fields[0] != key_type.encode():
            raise ValueError("the key blob names another type than the line")
        if key_type == "ssh-ed25519":
            if len(fields) != 2 or len(fields[1]) != 32:
                raise ValueError("an ed25519 key is 32 bytes")
        elif key_type == "sk-ssh-ed25519@openssh.com":
            if len(fields) != 3 or len(fields[1]) != 32:
                raise ValueError("an sk-ed25519 key is 32 bytes and an application")
            application = fields[2].decode("ascii")
        else:
            if len(fields) != 4 or fields[1] != b"nistp256":
                raise ValueError("an sk-ecdsa key is curve nistp256, a point, an application")
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), fields[2])
            application = fields[3].decode("ascii")
        if application is not None and not (application and application.isprintable()):
            raise ValueError("the application is empty or not printable")
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryRefused("bad_key", f"not a valid {key_type} key: {exc}") from None
    return f"{key_type} {text}", KINDS[key_type], application


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Registry:
    def __init__(self, db: Database | Path, audit: Audit | None = None):
        """`db`: the database (a path: an SQLite file)."""
        self.audit = audit
        self._db = db if isinstance(db, Database) else SQLite(db, "operators")
        with self._db.schema_transaction():
            self._db.script(_SCHEMA)

    # -- reading ------------------------------------------------------------------------------
    def _one(self, where: str, args: tuple) -> Operator | None:
        """The active row, else the newest revoked one."""
        row = self._db.one(f"SELECT * FROM operators WHERE {where} "
                           "ORDER BY revoked_at IS NOT NULL, seq DESC LIMIT 1", args)
        return None if row is None else _operator(row)

    def get(self, name: str) -> Operator:
        found = self._one("name = ?", (name,))
        if found is None:
            raise RegistryRefused("unknown_operator", f"no operator named {name!r}",
                                  hint="mcp-linux-infra operators list")
        return found

    def by_credential(self, credential_id: str) -> Operator:
        found = self._one("credential_id = ?", (credential_id,))
        if found is None:
            raise RegistryRefused("unknown_credential", "no operator enrolled this credential")
        return found

    def list(self, include_revoked: bool = True) -> list[Operator]:
        query = "SELECT * FROM operators"
        if not include_revoked:
            query += " WHERE revoked_at IS NULL"
        rows = self._db.all(query + " ORDER BY name, seq")
        return [_operator(r) for r in rows]

    def allowed_signers_lines(self) -> list[str]:
        """The active operators as allowed_signers lines (what the role writes from
        `mcp_infra_operators`)."""
        return [o.allowed_signers_line() for o in self.list(include_revoked=False)]

    # -- changing -----------------------------------------------------------------------------
    def add(self, name: str, public_key_line: str, kind: str | None = None,
            credential_id: str | None = None, rp_id: str | None = None) -> Operator:
        with self._db.transaction():
            operator = self._insert(name, public_key_line, kind, credential_id, rp_id)
        self._audit("operator_added", name=name, kind=operator.kind,
                    fingerprint=operator.fingerprint)
        return operator

    def _insert(self, name: str, public_key_line: str, kind: str | None,
                credential_id: str | None, rp_id: str | None) -> Operator:
        """Checks and inserts, inside the caller's transaction."""
        check_name(name)
        key, found_kind, application = parse_key_line(public_key_line)
        if kind is not None and kind != found_kind:
            raise RegistryRefused("bad_key", f"the key is {found_kind}, not {kind}")
        if rp_id is not None and (found_kind != "sk-ecdsa" or application != rp_id):
            raise RegistryRefused("rp_id_mismatch", f"the key's application is {application!r},"
                                  f" not the RP ID {rp_id!r}")
        if credential_id is not None and not _CREDENTIAL_RE.match(credential_id):
            raise RegistryRefused("bad_credential", "a credential id is 12 to 1023 bytes, "
                                  "base64url without padding")
        if self._db.one("SELECT 1 AS found FROM operators WHERE name = ? AND revoked_at IS "
                        "NULL", (name,)):
            raise RegistryRefused("operator_exists", f"operator {name!r} is already enrolled",
                                  hint=f"to replace the key: operators revoke {name}, then "
                                       "enroll or add again")
        holder = self._db.one("SELECT name FROM operators WHERE public_key = ?", (key,))
        if holder is not None:
            raise RegistryRefused("key_taken", f"this key is already registered for "
                                  f"{holder['name']!r}: one key names one principal")
        if credential_id is not None and self._db.one(
                "SELECT 1 AS found FROM operators WHERE credential_id = ?", (credential_id,)):
            raise RegistryRefused("credential_taken", "this credential is already enrolled")
        now = time.time()
        self._db.run("INSERT INTO operators (name, kind, public_key, rp_id, credential_id, "
                     "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                     (name, found_kind, key, rp_id, credential_id, now))
        return Operator(name, found_kind, key, rp_id, credential_id, now, None)

    def revoke(self, name: str) -> Operator:
        """The operator's key is no longer listed for deployment (targets keep trusting it
        until the role is run without it); outstanding enrollment links for the name die."""
        now = time.time()
        done = self._db.run("UPDATE operators SET revoked_at = ? WHERE name = ? AND "
                            "revoked_at IS NULL", (now, name))
        operator = self.get(name)
        if not done:
            raise RegistryRefused("operator_revoked", f"operator {name!r} is already revoked")
        self.cancel_enrollments(name)
        self._audit("operator_revoked", name=name, fingerprint=operator.fingerprint)
        return operator

    # -- enrollment ---------------------------------------------------------------------------
    def new_enrollment(self, name: str, ttl: float) -> str:
        """A one-time token for `name`; an earlier unused one for the same name dies."""
        check_name(name)
        if not 0 < ttl <= MAX_TTL:
            raise RegistryRefused("bad_ttl", f"an enrollment lasts 1 s to {MAX_TTL} s")
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._db.transaction():
            if self._db.one("SELECT 1 AS found FROM operators WHERE name = ? AND revoked_at IS "
                            "NULL", (name,)):
                raise RegistryRefused("operator_exists", f"operator {name!r} is already "
                                      "enrolled", hint=f"operators revoke {name} first")
            self._db.run("UPDATE enrollments SET used_at = ? WHERE name = ? AND "
                         "used_at IS NULL", (now, name))
            self._db.run("INSERT INTO enrollments (token_sha256, name, created_at, "
                         "expires_at) VALUES (?, ?, ?, ?)",
                         (_token_hash(token), name, now, now + ttl))
        self._audit("enrollment_created", name=name, expires_at=now + ttl)
        return token

    def cancel_enrollments(self, name: str) -> int:
        """Unused enrollment links for `name` die; how many there were."""
        count = self._db.run("UPDATE enrollments SET used_at = ? WHERE name = ? AND "
                             "used_at IS NULL", (time.time(), name))
        if count:
            self._audit("enrollment_cancelled", name=name, count=count)
        return count

    def _valid_enrollment(self, token: str, now: float) -> str:
        row = self._db.one("SELECT name, expires_at, used_at FROM enrollments WHERE "
                           "token_sha256 = ?" + self._db.FOR_UPDATE, (_token_hash(token),))
        if row is None:
            raise RegistryRefused("enrollment_unknown", "no such enrollment link")
        if row["used_at"] is not None:
            raise RegistryRefused("enrollment_used", "this enrollment link was already used "
                                  "(or replaced)", hint="ask an administrator for a new one")
        if row["expires_at"] <= now:
            raise RegistryRefused("enrollment_expired", "this enrollment link has expired",
                                  hint="ask an administrator for a new one")
        return row["name"]

    def peek_enrollment(self, token: str) -> str:
        """The name a still valid token enrolls, without using it (the enrollment page)."""
        return self._valid_enrollment(token, time.time())

    def take_enrollment(self, token: str) -> str:
        """Use the token once: the name it enrolls."""
        return self.complete_enrollment(token, None)[0]

    def complete_enrollment(self, token: str, public_key_line: str | None,
                            credential_id: str | None = None, rp_id: str | None = None
                            ) -> tuple[str, Operator | None]:
        """Use the token and (with a key) add its operator in one transaction: a refused key
        leaves the token usable, a used token adds nothing."""
        now = time.time()
        operator = None
        with self._db.transaction():
            name = self._valid_enrollment(token, now)
            if public_key_line is not None:
                operator = self._insert(name, public_key_line, None, credential_id, rp_id)
            self._db.run("UPDATE enrollments SET used_at = ? WHERE token_sha256 = ?",
                         (now, _token_hash(token)))
        self._audit("enrollment_used", name=name)
        if operator is not None:
            self._audit("operator_added", name=name, kind=operator.kind,
                        fingerprint=operator.fingerprint)
        return name, operator

    def _audit(self, event: str, **fields: object) -> None:
        if self.audit is not None:
            self.audit.info(event, **fields)

    def close(self) -> None:
        self._db.close()


def _operator(row: dict) -> Operator:
    return Operator(row["name"], row["kind"], row["public_key"], row["rp_id"],
                    row["credential_id"], row["created_at"], row["revoked_at"])


def open_registry(settings: Settings, audit: Audit | None = None) -> Registry:
    """The registry of these settings, in the proposals' database (PostgreSQL's if
    database_url is set, else the state directory's file)."""
    return Registry(open_database(settings.database_url, settings.state_dir,
                                  "approvals.sqlite3", "operators"), audit)
