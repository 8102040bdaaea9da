"""An independent signer of approval signatures, for tests: what operators' tools make.

- ed25519: the real `ssh-keygen -Y sign`.
- `Authenticator`: a simulated WebAuthn authenticator (a P-256 key of the `cryptography`
  package). It builds authenticatorData with chosen flags and counter and a clientDataJSON
  whose challenge is the base64url of the SSHSIG signed-data blob, and repacks the assertion
  into a `webauthn-sk-ecdsa-sha2-nistp256@openssh.com` SSHSIG, as a browser's assertion is
  repacked (/work/shared/notes/webauthn-approvals.md). Its key line is an
  `sk-ecdsa-sha2-nistp256@openssh.com` key whose application is the RP ID. It also makes the
  plain `sk-ecdsa-sha2-nistp256@openssh.com` signature type (a FIDO key used by ssh-keygen).
- `Ed25519SecurityKey`: an `sk-ssh-ed25519@openssh.com` key and its signatures.

Nothing here is trusted by the code under test: stock `ssh-keygen -Y verify` accepts what this
makes (tests/target/actions/test_sshsig_support.py checks it), and pra-run decides.
"""
from __future__ import annotations

import base64
import hashlib
import json
import struct
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

NAMESPACE = "mcp-linux-infra-approval"
KEYGEN = "/usr/bin/ssh-keygen"
UP, UV, AT, ED = 0x01, 0x04, 0x40, 0x80
SK_ECDSA = "sk-ecdsa-sha2-nistp256@openssh.com"
WEBAUTHN = "webauthn-sk-ecdsa-sha2-nistp256@openssh.com"
SK_ED25519 = "sk-ssh-ed25519@openssh.com"


def string(data: bytes | str) -> bytes:
    """SSH wire string: uint32 length, bytes."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return struct.pack(">I", len(data)) + data


def mpint(value: int) -> bytes:
    """SSH wire mpint of a non-negative integer."""
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    if raw and raw[0] & 0x80:
        raw = b"\0" + raw
    return string(raw)


def signed_data(message: bytes, namespace: str = NAMESPACE, hashalg: str = "sha512") -> bytes:
    """The blob an SSHSIG signs (PROTOCOL.sshsig) for `message`."""
    return (b"SSHSIG" + string(namespace) + string(b"") + string(hashalg)
            + string(hashlib.new(hashalg, message).digest()))


def armor(key_blob: bytes, sig_blob: bytes, namespace: str = NAMESPACE,
          hashalg: str = "sha512", version: int = 1, magic: bytes = b"SSHSIG") -> str:
    """An armored SSHSIG around `sig_blob`, 70 columns like ssh-keygen."""
    raw = (magic + struct.pack(">I", version) + string(key_blob) + string(namespace)
           + string(b"") + string(hashalg) + string(sig_blob))
    text = base64.b64encode(raw).decode("ascii")
    lines = [text[i:i + 70] for i in range(0, len(text), 70)]
    return "-----BEGIN SSH SIGNATURE-----\n" + "\n".join(lines) + "\n-----END SSH SIGNATURE-----\n"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def ssh_keygen_sign(private_key: Path, message: bytes, namespace: str = NAMESPACE,
                    hashalg: str = "sha512") -> str:
    """An ed25519 (or any file key's) signature made by the real ssh-keygen."""
    proc = subprocess.run([KEYGEN, "-Y", "sign", "-f", str(private_key), "-n", namespace,
                           "-O", f"hashalg={hashalg}", "-"], input=message,
                          capture_output=True, check=True, timeout=60)
    return proc.stdout.decode("ascii")


def ssh_keygen_verify(allowed_signers: Path, principal: str, message: bytes, signature: str,
                      scratch: Path, namespace: str = NAMESPACE) -> subprocess.CompletedProcess:
    """Stock `ssh-keygen -Y verify` on a signature made here."""
    sig = scratch / "check.sig"
    sig.write_text(signature)
    return subprocess.run([KEYGEN, "-Y", "verify", "-f", str(allowed_signers), "-I", principal,
                           "-n", namespace, "-s", str(sig)], input=message,
                          capture_output=True, check=False, timeout=60)


class Authenticator:
    """A simulated WebAuthn authenticator holding one P-256 credential for `rp_id`."""

    def __init__(self, rp_id: str = "localhost", origin: str | None = None):
        self.rp_id = rp_id
        self.origin = origin or f"https://{rp_id}"
        self.private = ec.generate_private_key(ec.SECP256R1())

    @property
    def key_blob(self) -> bytes:
        return sk_ecdsa_key_blob(self.private.public_key(), self.rp_id)

    def public_line(self) -> str:
        """`TYPE BASE64`, as enrollment stores it and allowed_signers lists it."""
        return f"{SK_ECDSA} {base64.b64encode(self.key_blob).decode('ascii')}"

    def _ecdsa(self, to_sign: bytes) -> bytes:
        r, s = decode_dss_signature(self.private.sign(to_sign, ec.ECDSA(hashes.SHA256())))
        return mpint(r) + mpint(s)

    def sign(self, message: bytes, flags: int = UP | UV, counter: int = 1,
             origin: str | None = None, namespace: str = NAMESPACE, hashalg: str = "sha512",
             challenge_message: bytes | None = None, extensions: bytes = b"") -> str:
        """A webauthn-sk-ecdsa SSHSIG over `message`. `challenge_message`: put another
        message's blob into the challenge (a signature over another document)."""
        origin = origin or self.origin
        challenge = signed_data(message if challenge_message is None else challenge_message,
                                namespace, hashalg)
        client_data = json.dumps({"type": "webauthn.get", "challenge": b64url(challenge),
                                  "origin": origin, "crossOrigin": False},
                                 separators=(",", ":")).encode()
        auth_data = (hashlib.sha256(self.rp_id.encode()).digest() + bytes([flags])
                     + struct.pack(">I", counter) + extensions)
        der = self.private.sign(auth_data + hashlib.sha256(client_data).digest(),
                                ec.ECDSA(hashes.SHA256()))
        return webauthn_sshsig(self.key_blob, client_data, auth_data, der, namespace, hashalg)

    def sign_plain(self, message: bytes, flags: int = UP | UV, counter: int = 1,
                   namespace: str = NAMESPACE, hashalg: str = "sha512") -> str:
        """A plain sk-ecdsa SSHSIG (what `ssh-keygen -Y sign` makes with a FIDO key)."""
        data = signed_data(message, namespace, hashalg)
        to_sign = (hashlib.sha256(self.rp_id.encode()).digest() + bytes([flags])
                   + struct.pack(">I", counter) + hashlib.sha256(data).digest())
        sig_blob = (string(SK_ECDSA) + string(self._ecdsa(to_sign)) + bytes([flags])
                    + struct.pack(">I", counter))
        return armor(self.key_blob, sig_blob, namespace, hashalg)


def sk_ecdsa_key_blob(public_key, rp_id: str) -> bytes:
    """The sk-ecdsa-sha2-nistp256 key of a WebAuthn credential: a P-256 public key (an
    `cryptography` key, or its SPKI DER as `getPublicKey()` gives it), application = RP ID."""
    if isinstance(public_key, bytes):
        public_key = serialization.load_der_public_key(public_key)
    if not (isinstance(public_key, ec.EllipticCurvePublicKey)
            and isinstance(public_key.curve, ec.SECP256R1)):
        raise TypeError("not a P-256 public key")
    point = public_key.public_bytes(serialization.Encoding.X962,
                                    serialization.PublicFormat.UncompressedPoint)
    return string(SK_ECDSA) + string("nistp256") + string(point) + string(rp_id)


def webauthn_sshsig(key_blob: bytes, client_data: bytes, authenticator_data: bytes,
                    der_signature: bytes, namespace: str = NAMESPACE,
                    hashalg: str = "sha512") -> str:
    """Repack a WebAuthn assertion (a browser's, or the simulated one) into a
    webauthn-sk-ecdsa SSHSIG (PROTOCOL.u2f): flags and counter from authenticatorData[32]
    and [33:37], extensions from [37:], the origin from clientDataJSON."""
    r, s = decode_dss_signature(der_signature)
    origin = json.loads(client_data)["origin"]
    sig_blob = (string(WEBAUTHN) + string(mpint(r) + mpint(s)) + authenticator_data[32:37]
                + string(origin) + string(client_data) + string(authenticator_data[37:]))
    return armor(key_blob, sig_blob, namespace, hashalg)


class Ed25519SecurityKey:
    """A simulated FIDO key with an sk-ssh-ed25519 credential for application `application`."""

    def __init__(self, application: str = "ssh:"):
        self.application = application
        self.private = ed25519.Ed25519PrivateKey.generate()

    @property
    def key_blob(self) -> bytes:
        raw = self.private.public_key().public_bytes(serialization.Encoding.Raw,
                                                     serialization.PublicFormat.Raw)
        return string(SK_ED25519) + string(raw) + string(self.application)

    def public_line(self) -> str:
        return f"{SK_ED25519} {base64.b64encode(self.key_blob).decode('ascii')}"

    def sign(self, message: bytes, flags: int = UP | UV, counter: int = 1,
             namespace: str = NAMESPACE, hashalg: str = "sha512") -> str:
        data = signed_data(message, namespace, hashalg)
        to_sign = (hashlib.sha256(self.application.encode()).digest() + bytes([flags])
                   + struct.pack(">I", counter) + hashlib.sha256(data).digest())
        sig_blob = (string(SK_ED25519) + string(self.private.sign(to_sign)) + bytes([flags])
                    + struct.pack(">I", counter))
        return armor(self.key_blob, sig_blob, namespace, hashalg)
