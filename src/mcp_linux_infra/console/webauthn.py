"""WebAuthn to OpenSSH: a passkey's public key as an `sk-ecdsa-sha2-nistp256@openssh.com`
key line, an assertion repacked into a `webauthn-sk-ecdsa-sha2-nistp256@openssh.com` SSHSIG
that stock `ssh-keygen -Y verify` accepts, and the checks of a login or approval assertion.

The layouts are PROTOCOL.sshsig and PROTOCOL.u2f, as checked against OpenSSH 9.2
(/work/shared/notes/webauthn-approvals.md): the key's application is the RP ID, the WebAuthn
challenge is the whole SSHSIG signed-data blob, and the verifier compares the start of
clientDataJSON byte for byte. Repacking needs no private key; the server holds none.
Every refusal is a `WebAuthnRefused` with a code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from mcp_linux_infra.approvals.document import NAMESPACE

SK_ECDSA = "sk-ecdsa-sha2-nistp256@openssh.com"
WEBAUTHN = "webauthn-sk-ecdsa-sha2-nistp256@openssh.com"
ES256 = -7
UP, UV, AT, ED = 0x01, 0x04, 0x40, 0x80
HASHALG = "sha512"
_B64URL = re.compile(r"[A-Za-z0-9_-]*\Z")
MAX_FIELD = 65536


class WebAuthnRefused(Exception):
    def __init__(self, code: str, text: str):
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: object, field: str = "value") -> bytes:
    """Strict base64url without padding, as the contract sends every binary value."""
    if not isinstance(text, str) or len(text) > MAX_FIELD or not _B64URL.match(text) \
            or len(text) % 4 == 1:
        raise WebAuthnRefused("bad_request", f"{field} is not base64url without padding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise WebAuthnRefused("bad_request", f"{field} is not base64url") from None


def _string(data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return struct.pack(">I", len(data)) + data


def _mpint(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return _string(b"\0" + raw if raw and raw[0] & 0x80 else raw)


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)


def key_line(spki_der: bytes, rp_id: str) -> str:
    """`sk-ecdsa-sha2-nistp256@openssh.com BASE64` of a P-256 SPKI, application = RP ID."""
    try:
        key = serialization.load_der_public_key(spki_der)
    except (ValueError, TypeError):
        raise WebAuthnRefused("bad_public_key", "the public key is not SPKI DER") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise WebAuthnRefused("unsupported_algorithm", "only ES256 (P-256) credentials")
    blob = _string(SK_ECDSA) + _string("nistp256") + _string(_point(key)) + _string(rp_id)
    return f"{SK_ECDSA} {base64.b64encode(blob).decode('ascii')}"


def _key_blob(line: str) -> bytes:
    key_type, _, text = line.partition(" ")
    if key_type != SK_ECDSA:
        raise WebAuthnRefused("unsupported_key_type", "the operator's key is not a passkey "
                              f"({SK_ECDSA})")
    return base64.b64decode(text.split(" ", 1)[0], validate=True)


def public_key(line: str) -> tuple[ec.EllipticCurvePublicKey, str]:
    """The P-256 key and application (RP ID) of an sk-ecdsa key line."""
    blob, fields, pos = _key_blob(line), [], 0
    while pos < len(blob):
        (size,) = struct.unpack(">I", blob[pos:pos + 4])
        fields.append(blob[pos + 4:pos + 4 + size])
        pos += 4 + size
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), fields[2])
    return key, fields[3].decode("ascii")


def signed_data(document: bytes, namespace: str = NAMESPACE) -> bytes:
    """The SSHSIG signed-data blob of `document`: the WebAuthn challenge of an approval."""
    return (b"SSHSIG" + _string(namespace) + _string(b"") + _string(HASHALG)
            + _string(hashlib.new(HASHALG, document).digest()))


def armor(raw: bytes) -> str:
    text = base64.b64encode(raw).decode("ascii")
    body = "\n".join(text[i:i + 70] for i in range(0, len(text), 70))
    return f"-----BEGIN SSH SIGNATURE-----\n{body}\n-----END SSH SIGNATURE-----\n"


@dataclass(frozen=True)
class Assertion:
    """A browser's assertion as the console receives it (all decoded)."""

    credential_id: bytes
    client_data_json: bytes
    authenticator_data: bytes
    signature: bytes  # DER

    @classmethod
    def from_json(cls, body: object) -> Assertion:
        if not isinstance(body, dict):
            raise WebAuthnRefused("bad_request", "expected a JSON object")
        return cls(*(b64url_decode(body.get(f), f) for f in
                     ("id", "clientDataJSON", "authenticatorData", "signature")))

    @property
    def flags(self) -> int:
        return self.authenticator_data[32]

    @property
    def counter(self) -> int:
        return struct.unpack(">I", self.authenticator_data[33:37])[0]

    def check(self, key: str, rp_id: str, origin: str, challenge: bytes) -> None:
        """What a relying party checks: the client data's type, challenge and origin, the RP
        ID hash, presence and verification, and the signature by the operator's key."""
        prefix = json.dumps({"type": "webauthn.get", "challenge": b64url(challenge),
                             "origin": origin}, separators=(",", ":")).encode()[:-1]
        try:
            client = json.loads(self.client_data_json)
        except (ValueError, UnicodeDecodeError):
            raise WebAuthnRefused("bad_client_data", "clientDataJSON is not JSON") from None
        if not isinstance(client, dict) or client.get("type") != "webauthn.get":
            raise WebAuthnRefused("bad_client_data", "not an assertion (webauthn.get)")
        if client.get("origin") != origin:
            raise WebAuthnRefused("wrong_origin", "the assertion was made for another origin")
        if not isinstance(client.get("challenge"), str) or not hmac.compare_digest(
                client["challenge"], b64url(challenge)):
            raise WebAuthnRefused("wrong_challenge", "the authenticator signed another "
                                  "challenge than this one")
        if client.get("crossOrigin") is True or not self.client_data_json.startswith(prefix):
            raise WebAuthnRefused("bad_client_data", "clientDataJSON is not in the form "
                                  "OpenSSH verifies")
        data = self.authenticator_data
        if len(data) < 37:
            raise WebAuthnRefused("bad_authenticator_data", "authenticatorData is too short")
        if not hmac.compare_digest(data[:32], hashlib.sha256(rp_id.encode()).digest()):
            raise WebAuthnRefused("wrong_rp_id", "the assertion is for another RP ID")
        if self.flags & AT or bool(self.flags & ED) != (len(data) > 37):
            raise WebAuthnRefused("bad_authenticator_data", "unexpected flags")
        if not self.flags & UP:
            raise WebAuthnRefused("user_presence_missing", "the authenticator did not "
                                  "confirm a person's presence")
        if not self.flags & UV:
            raise WebAuthnRefused("user_verification_missing", "the authenticator did not "
                                  "verify the user (PIN or biometric)")
        public, application = public_key(key)
        if application != rp_id:
            raise WebAuthnRefused("wrong_rp_id", "the operator's key is bound to another RP ID")
        try:
            public.verify(self.signature, data + hashlib.sha256(self.client_data_json).digest(),
                          ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise WebAuthnRefused("bad_signature", "the signature does not verify with the "
                                  "operator's key") from None

    def sshsig(self, key: str, origin: str, namespace: str = NAMESPACE) -> str:
        """The armored webauthn-sk-ecdsa SSHSIG of this assertion (PROTOCOL.u2f)."""
        try:
            r, s = decode_dss_signature(self.signature)
        except ValueError:
            raise WebAuthnRefused("bad_signature", "the signature is not DER ECDSA") from None
        data = self.authenticator_data
        sig_blob = (_string(WEBAUTHN) + _string(_mpint(r) + _mpint(s)) + data[32:37]
                    + _string(origin) + _string(self.client_data_json) + _string(data[37:]))
        raw = (b"SSHSIG" + struct.pack(">I", 1) + _string(_key_blob(key)) + _string(namespace)
               + _string(b"") + _string(HASHALG) + _string(sig_blob))
        return armor(raw)


@dataclass(frozen=True)
class Registration:
    """A browser's new credential (navigator.credentials.create, attestation "none")."""

    credential_id: bytes
    client_data_json: bytes
    authenticator_data: bytes
    public_key: bytes  # SPKI DER
    algorithm: int

    @classmethod
    def from_json(cls, body: object) -> Registration:
        if not isinstance(body, dict) or not isinstance(body.get("publicKeyAlgorithm"), int):
            raise WebAuthnRefused("bad_request", "expected id, clientDataJSON, "
                                  "authenticatorData, publicKey, publicKeyAlgorithm")
        return cls(*(b64url_decode(body.get(f), f) for f in
                     ("id", "clientDataJSON", "authenticatorData", "publicKey")),
                   body["publicKeyAlgorithm"])

    def check(self, rp_id: str, origin: str, challenge: bytes) -> str:
        """The key line, once the client data and the authenticator data agree with the
        enrollment: type, challenge, origin, RP ID hash, UP and UV, and the attested
        credential (its id and its COSE key, which must be the SPKI's point)."""
        if self.algorithm != ES256:
            raise WebAuthnRefused("unsupported_algorithm", "only ES256 (P-256) credentials")
        try:
            client = json.loads(self.client_data_json)
        except (ValueError, UnicodeDecodeError):
            raise WebAuthnRefused("bad_client_data", "clientDataJSON is not JSON") from None
        if not isinstance(client, dict) or client.get("type") != "webauthn.create":
            raise WebAuthnRefused("bad_client_data", "not a registration (webauthn.create)")
        if client.get("origin") != origin or client.get("crossOrigin") is True:
            raise WebAuthnRefused("wrong_origin", "the credential was made for another origin")
        if not isinstance(client.get("challenge"), str) or not hmac.compare_digest(
                client["challenge"], b64url(challenge)):
            raise WebAuthnRefused("wrong_challenge", "not this enrollment's challenge")
        data = self.authenticator_data
        if len(data) < 55 or not hmac.compare_digest(
                data[:32], hashlib.sha256(rp_id.encode()).digest()):
            raise WebAuthnRefused("wrong_rp_id", "the credential is for another RP ID")
        flags = data[32]
        if flags & (UP | UV | AT) != UP | UV | AT:
            raise WebAuthnRefused("user_verification_missing", "the authenticator must "
                                  "confirm presence and verify the user")
        (size,) = struct.unpack(">H", data[53:55])
        if data[55:55 + size] != self.credential_id or not 16 <= size <= 1023:
            raise WebAuthnRefused("bad_authenticator_data", "the credential id differs")
        line = key_line(self.public_key, rp_id)
        public, _ = public_key(line)
        point = _point(public)
        cose = (bytes.fromhex("a5010203262001215820") + point[1:33] + bytes.fromhex("225820")
                + point[33:])
        if data[55 + size:55 + size + len(cose)] != cose:
            raise WebAuthnRefused("bad_public_key", "the public key differs from the one the "
                                  "authenticator attested")
        return line
