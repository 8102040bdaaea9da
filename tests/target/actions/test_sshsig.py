"""Decoding an SSHSIG's signed fields (actions/sshsig.py): each signature type the approvals
take, made by real ssh-keygen or the independent signer (sshsig_support), and malformed ones."""
from __future__ import annotations

import base64
import struct
import subprocess

import pytest
from mcp_infra_target.actions import sshsig
from mcp_infra_target.core.refusal import Refusal
from sshsig_support import (
    SK_ECDSA,
    SK_ED25519,
    UP,
    UV,
    WEBAUTHN,
    Authenticator,
    Ed25519SecurityKey,
    armor,
    mpint,
    ssh_keygen_sign,
    string,
)

MESSAGE = b'{"v":2}'


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One signature of each supported type, and the keys that made them."""
    directory = tmp_path_factory.mktemp("sshsig")
    for kind in ("ed25519", "ecdsa"):
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(directory / kind)],
                       check=True)
    webauthn = Authenticator("approve.example.com")
    sk_ed = Ed25519SecurityKey()
    return {
        "ed25519": ssh_keygen_sign(directory / "ed25519", MESSAGE),
        "ed25519-sha256": ssh_keygen_sign(directory / "ed25519", MESSAGE, hashalg="sha256"),
        "ecdsa": ssh_keygen_sign(directory / "ecdsa", MESSAGE),
        "webauthn": webauthn.sign(MESSAGE, flags=UP | UV, counter=7),
        "sk-ecdsa": webauthn.sign_plain(MESSAGE, flags=UP, counter=3),
        "sk-ed25519": sk_ed.sign(MESSAGE, flags=0, counter=2**32 - 1),
        "webauthn-key": webauthn.key_blob, "sk-ed25519-key": sk_ed.key_blob,
    }


@pytest.mark.parametrize("name, fields", [
    ("ed25519", {"key_type": "ssh-ed25519", "signature_type": "ssh-ed25519", "hashalg": "sha512",
                 "flags": None, "counter": None, "origin": None, "application": None}),
    ("ed25519-sha256", {"hashalg": "sha256", "flags": None}),
    ("webauthn", {"key_type": SK_ECDSA, "signature_type": WEBAUTHN, "flags": 5, "counter": 7,
                  "origin": "https://approve.example.com",
                  "application": "approve.example.com"}),
    ("sk-ecdsa", {"key_type": SK_ECDSA, "signature_type": SK_ECDSA, "flags": 1, "counter": 3,
                  "origin": None}),
    ("sk-ed25519", {"key_type": SK_ED25519, "signature_type": SK_ED25519, "flags": 0,
                    "counter": 2**32 - 1, "application": "ssh:"}),
])
def test_decodes_each_supported_type(made, name, fields):
    sig = sshsig.decode(made[name])
    assert sig.namespace == "mcp-linux-infra-approval"
    assert {k: getattr(sig, k) for k in fields} == fields
    assert sig.security_key == (fields.get("flags", sig.flags) is not None)


def test_key_blob_is_what_allowed_signers_lists(made):
    sig = sshsig.decode(made["webauthn"])
    assert base64.b64decode(sig.key_blob) == made["webauthn-key"]


def _raw(armored: str) -> bytes:
    return sshsig.unarmor(armored)


def _rearmor(raw: bytes) -> str:
    text = base64.b64encode(raw).decode()
    return ("-----BEGIN SSH SIGNATURE-----\n"
            + "".join(text[i:i + 70] + "\n" for i in range(0, len(text), 70))
            + "-----END SSH SIGNATURE-----\n")


def _parts(raw: bytes) -> list[bytes]:
    """magic+version, then the five strings of an SSHSIG."""
    out, pos = [raw[:10]], 10
    while pos < len(raw):
        size = struct.unpack(">I", raw[pos:pos + 4])[0]
        out.append(raw[pos + 4:pos + 4 + size])
        pos += 4 + size
    return out


def _replace(armored: str, index: int, value: bytes) -> str:
    parts = _parts(_raw(armored))
    parts[index] = value
    return _rearmor(parts[0] + b"".join(string(p) for p in parts[1:]))


@pytest.mark.parametrize("mutate, reason", [
    pytest.param(lambda m: "", "bad_signature", id="empty"),
    pytest.param(lambda m: m["ed25519"].replace("BEGIN", "BEGAN"), "bad_signature",
                 id="armor"),
    pytest.param(lambda m: m["ed25519"].replace("\n", "\r\n"), "bad_signature", id="crlf"),
    pytest.param(lambda m: m["ed25519"].replace("-----\n", "-----\n!!!!\n", 1), "bad_signature",
                 id="not-base64"),
    pytest.param(lambda m: m["ed25519"].replace("-----\n", "-----\nQQ=\n", 1), "bad_signature",
                 id="bad-padding"),
    pytest.param(lambda m: _rearmor(b"SSHSIH" + _raw(m["ed25519"])[6:]), "bad_signature",
                 id="magic"),
    pytest.param(lambda m: _rearmor(b"SSHSIG\0\0\0\2" + _raw(m["ed25519"])[10:]),
                 "bad_signature", id="version-2"),
    pytest.param(lambda m: _rearmor(_raw(m["ed25519"])[:-5]), "bad_signature", id="truncated"),
    pytest.param(lambda m: _rearmor(_raw(m["ed25519"]) + b"\0"), "bad_signature",
                 id="trailing-data"),
    pytest.param(lambda m: _rearmor(b"SSHSIG\0\0\0\1\xff\xff\xff\xff"), "bad_signature",
                 id="huge-length"),
    pytest.param(lambda m: _replace(m["ed25519"], 4, b"md5"), "bad_signature", id="hash-md5"),
    pytest.param(lambda m: _replace(m["ed25519"], 2, b"name\x1bspace"), "bad_signature",
                 id="control-char-namespace"),
    pytest.param(lambda m: _replace(m["ed25519"], 2, "nämespace".encode()), "bad_signature",
                 id="non-ascii-namespace"),
    pytest.param(lambda m: m["ecdsa"], "unsupported_key_type", id="ecdsa-key"),
    pytest.param(lambda m: _replace(m["ed25519"], 1, string("ssh-rsa") + mpint(65537)
                                    + mpint(2**2047)), "unsupported_key_type", id="rsa-key"),
    pytest.param(lambda m: _replace(m["ed25519"], 1, _parts(_raw(m["ed25519"]))[1] + b"\0"),
                 "bad_signature", id="key-trailing-data"),
    pytest.param(lambda m: _replace(m["webauthn"], 1, string(SK_ECDSA) + string("nistp384")
                                    + string(b"\4" * 97) + string("x")),
                 "bad_signature", id="sk-ecdsa-other-curve"),
    pytest.param(lambda m: _replace(m["ed25519"], 5, string(SK_ED25519) + string(b"s" * 64)
                                    + b"\1\0\0\0\1"), "bad_signature",
                 id="sig-type-of-another-key"),
    pytest.param(lambda m: _replace(m["webauthn"], 5, string("ssh-ed25519") + string(b"s" * 64)),
                 "bad_signature", id="ed25519-sig-for-sk-key"),
    pytest.param(lambda m: _replace(m["sk-ecdsa"], 5, _parts(_raw(m["sk-ecdsa"]))[5][:-2]),
                 "bad_signature", id="sk-counter-truncated"),
    pytest.param(lambda m: _replace(m["sk-ecdsa"], 5, _parts(_raw(m["sk-ecdsa"]))[5] + b"x"),
                 "bad_signature", id="sk-trailing-data"),
    pytest.param(lambda m: _replace(m["webauthn"], 5, _parts(_raw(m["webauthn"]))[5][:-4]),
                 "bad_signature", id="webauthn-no-extensions"),
])
def test_malformed_signatures_are_refused(made, mutate, reason):
    with pytest.raises(Refusal) as caught:
        sshsig.decode(mutate(made))
    assert caught.value.reason == reason


def test_armor_helper_round_trips(made):
    """The test's own re-armoring is faithful: an untouched signature decodes the same."""
    assert sshsig.decode(_rearmor(_raw(made["webauthn"]))) == sshsig.decode(made["webauthn"])
    assert armor(b"k", b"s").startswith("-----BEGIN SSH SIGNATURE-----\n")
