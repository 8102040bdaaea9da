"""A simulated browser with a passkey, for console tests: what `navigator.credentials`
hands to console.js (registration and assertion, every binary value base64url), made with
the independent authenticator of sshsig_support (its P-256 key and RP ID)."""
from __future__ import annotations

import hashlib
import json
import os
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sshsig_support import UP, UV, Authenticator, b64url, signed_data

AT = 0x40


class Passkey(Authenticator):
    """One discoverable credential: an id, the P-256 key, the RP ID, the page's origin."""

    def __init__(self, rp_id: str = "localhost", origin: str | None = None):
        super().__init__(rp_id, origin)
        self.credential_id = os.urandom(16)

    def spki(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def cose(self) -> bytes:
        """The COSE EC2 key, CTAP2 canonical CBOR (keys 1, 3, -1, -2, -3)."""
        point = self.private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return (b"\xa5\x01\x02\x03\x26\x20\x01\x21\x58\x20" + point[1:33] + b"\x22\x58\x20"
                + point[33:])

    def _client(self, kind: str, challenge: bytes, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": b64url(challenge),
                           "origin": origin or self.origin, "crossOrigin": False},
                          separators=(",", ":")).encode()

    def register(self, challenge: bytes, flags: int = UP | UV | AT, origin: str | None = None,
                 spki: bytes | None = None, algorithm: int = -7) -> dict:
        auth_data = (hashlib.sha256(self.rp_id.encode()).digest() + bytes([flags])
                     + struct.pack(">I", 0) + bytes(16)
                     + struct.pack(">H", len(self.credential_id)) + self.credential_id
                     + self.cose())
        return {"id": b64url(self.credential_id),
                "clientDataJSON": b64url(self._client("webauthn.create", challenge, origin)),
                "authenticatorData": b64url(auth_data), "publicKey": b64url(spki or self.spki()),
                "publicKeyAlgorithm": algorithm}

    def assertion(self, challenge: bytes, flags: int = UP | UV, origin: str | None = None,
                  counter: int = 1, rp_id: str | None = None, extensions: bytes = b"") -> dict:
        client = self._client("webauthn.get", challenge, origin)
        auth_data = (hashlib.sha256((rp_id or self.rp_id).encode()).digest() + bytes([flags])
                     + struct.pack(">I", counter) + extensions)
        der = self.private.sign(auth_data + hashlib.sha256(client).digest(),
                                ec.ECDSA(hashes.SHA256()))
        return {"id": b64url(self.credential_id), "clientDataJSON": b64url(client),
                "authenticatorData": b64url(auth_data), "signature": b64url(der)}

    def approve(self, document: str, **kwargs) -> dict:
        """What console.js sends for a document: the challenge is its SSHSIG blob."""
        return self.assertion(signed_data(document.encode("utf-8")), **kwargs)
