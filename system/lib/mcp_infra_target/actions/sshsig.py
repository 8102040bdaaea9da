"""Decode an armored SSH signature (PROTOCOL.sshsig, PROTOCOL.u2f) without verifying it.

ssh-keygen verifies the cryptography; it does not check what a security key's signature
says about the person (OpenSSH 9.2 ignores the user-presence and user-verification flags).
This module reads those signed fields so that pra-run can: the key and signature types, the
namespace, the hash, and for security keys the flags, the counter and (WebAuthn) the origin.
Pure: bytes in, a `Signature` or a Refusal out.
"""
from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass

from mcp_infra_target.core.refusal import Refusal

MAGIC = b"SSHSIG"
VERSION = 1
HASHALGS = ("sha512", "sha256")
ARMOR_RE = re.compile(
    r"-----BEGIN SSH SIGNATURE-----\n((?:[A-Za-z0-9+/=]{1,76}\n){1,200})"
    r"-----END SSH SIGNATURE-----\n?\Z")
WEBAUTHN = "webauthn-sk-ecdsa-sha2-nistp256@openssh.com"
SK_ECDSA = "sk-ecdsa-sha2-nistp256@openssh.com"
SK_ED25519 = "sk-ssh-ed25519@openssh.com"
# key type: (fields of its public key after the type, signature types it may make)
KEY_TYPES = {
    "ssh-ed25519": (("key",), ("ssh-ed25519",)),
    SK_ED25519: (("key", "application"), (SK_ED25519,)),
    SK_ECDSA: (("curve", "key", "application"), (SK_ECDSA, WEBAUTHN)),
}
FLAG_USER_PRESENT = 0x01
FLAG_USER_VERIFIED = 0x04
MAX_STRING = 8192


@dataclass(frozen=True)
class Signature:
    """What a signature says about itself; `flags`, `counter` only for security keys,
    `origin` only for WebAuthn. `key_blob` is the public key as allowed_signers writes it
    (base64)."""

    key_type: str
    signature_type: str
    namespace: str
    hashalg: str
    key_blob: str
    application: str | None = None
    flags: int | None = None
    counter: int | None = None
    origin: str | None = None

    @property
    def security_key(self) -> bool:
        return self.flags is not None

    def summary(self) -> dict:
        """The signature as the log keeps it."""
        out = {"key_type": self.key_type, "signature_type": self.signature_type,
               "hashalg": self.hashalg}
        if self.security_key:
            out.update(flags=self.flags, counter=self.counter, application=self.application)
        if self.origin is not None:
            out["origin"] = self.origin
        return out


def _bad(text: str) -> Refusal:
    return Refusal("bad_signature", "signature/format", text)


class _Reader:
    """SSH wire format (RFC 4251): uint32, byte, length-prefixed string."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, size: int) -> bytes:
        if size > len(self.data) - self.pos:
            raise _bad("truncated signature")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def uint32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def string(self) -> bytes:
        size = self.uint32()
        if size > MAX_STRING:
            raise _bad("over-long field")
        return self.take(size)

    def text(self) -> str:
        raw = self.string()
        try:
            value = raw.decode("ascii")
        except UnicodeDecodeError:
            raise _bad("non-ASCII name") from None
        if not value.isprintable():
            raise _bad("non-printable name")
        return value

    def end(self) -> None:
        if self.pos != len(self.data):
            raise _bad("trailing data")


def unarmor(armored: str) -> bytes:
    """The binary SSHSIG inside the armor; refuse anything but ssh-keygen's armor."""
    match = ARMOR_RE.match(armored) if isinstance(armored, str) else None
    if not match:
        raise _bad("malformed signature armor")
    try:
        return base64.b64decode("".join(match.group(1).split()), validate=True)
    except (binascii.Error, ValueError):
        raise _bad("malformed signature base64") from None


def _public_key(blob: bytes) -> tuple[str, str | None]:
    """(key type, application) of a public key blob."""
    reader = _Reader(blob)
    key_type = reader.text()
    if key_type not in KEY_TYPES:
        raise Refusal("unsupported_key_type", "signature/key_type",
                      "approvals take ssh-ed25519, sk-ssh-ed25519 and sk-ecdsa-sha2-nistp256 keys")
    fields = {name: reader.string() for name in KEY_TYPES[key_type][0]}
    reader.end()
    if "curve" in fields and fields["curve"] != b"nistp256":
        raise _bad("sk-ecdsa key on another curve")
    application = fields.get("application")
    return key_type, None if application is None else application.decode("ascii", "replace")


def _signature_fields(blob: bytes, key_type: str) -> dict:
    """The signature blob's type and, for a security key, its signed flags and counter."""
    reader = _Reader(blob)
    sig_type = reader.text()
    if sig_type not in KEY_TYPES[key_type][1]:
        raise _bad("signature type %s does not match key type %s" % (sig_type, key_type))
    reader.string()  # the signature proper: ssh-keygen's to check
    out = {"signature_type": sig_type}
    if key_type != "ssh-ed25519":
        out.update(flags=reader.byte(), counter=reader.uint32())
    if sig_type == WEBAUTHN:
        origin = reader.text()
        reader.string()  # clientDataJSON: ssh-keygen compares its start with the signed data
        reader.string()  # extensions
        out["origin"] = origin
    reader.end()
    return out


def decode(armored: str) -> Signature:
    """Decode an armored SSHSIG; Refusal `bad_signature` or `unsupported_key_type`."""
    reader = _Reader(unarmor(armored))
    if reader.take(len(MAGIC)) != MAGIC:
        raise _bad("not an SSH signature")
    if reader.uint32() != VERSION:
        raise _bad("unsupported SSH signature version")
    key = reader.string()
    namespace = reader.text()
    reader.string()  # reserved
    hashalg = reader.text()
    sigblob = reader.string()
    reader.end()
    if hashalg not in HASHALGS:
        raise _bad("unsupported hash algorithm")
    key_type, application = _public_key(key)
    return Signature(key_type=key_type, namespace=namespace, hashalg=hashalg,
                     key_blob=base64.b64encode(key).decode("ascii"), application=application,
                     **_signature_fields(sigblob, key_type))
