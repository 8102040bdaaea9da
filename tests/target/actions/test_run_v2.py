"""pra-run with v2 documents, through the real script in a test root: several signatures
(real ssh-keygen ed25519, a simulated WebAuthn authenticator, sshsig_support), principals
learned from allowed_signers, presence and verification, the two-person rule, plans."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

import pytest
from pra_support import HOST, NAMESPACE, canonical, refusal, result
from sshsig_support import UP, UV, Authenticator, Ed25519SecurityKey

ORIGIN = "https://approve.example.com"


@pytest.fixture(scope="module")
def tokens():
    """Security keys: dave and erin (WebAuthn, RP ID approve.example.com), frank (sk-ed25519),
    and one nobody enrolled."""
    return {"dave": Authenticator("approve.example.com", ORIGIN),
            "erin": Authenticator("approve.example.com", ORIGIN),
            "frank": Ed25519SecurityKey(),
            "stranger": Authenticator("approve.example.com", ORIGIN)}


@pytest.fixture
def v2root(root, tokens):
    """The test root with dave, erin and frank enrolled next to alice and bob."""
    path = root.path / "etc/mcp-infra/allowed_signers"
    path.write_text(path.read_text() + "".join(
        f'{name} namespaces="{NAMESPACE}" {tokens[name].public_line()}\n'
        for name in ("dave", "erin", "frank")))
    return root


def document(root, steps=None, approvals=1, **overrides):
    now = int(time.time())
    doc = {"v": 2, "id": "prop-2",
           "steps": steps or [step(root)],
           "not_before": now - 10, "not_after": now + 600, "approvals": approvals}
    doc.update(overrides)
    return doc


def step(root, host=HOST, action="touch_file", file="a"):
    return {"host": host, "action": action, "params": {"file": root.file(file)},
            "nonce": os.urandom(16).hex()}


class Signed:
    """A document's text and signatures by named signers."""

    def __init__(self, root, tokens, doc):
        self.root, self.tokens = root, tokens
        self.text = canonical(doc)
        self.data = self.text.encode("utf-8")

    def by(self, name, **options):
        if name in self.tokens:
            return self.tokens[name].sign(self.data, **options)
        return self.root.keys.sign(self.data, name)

    def envelope(self, *signatures, step=0, **fields):
        envelope = {"document": self.text, "signatures": list(signatures), "step": step}
        envelope.update(fields)
        return json.dumps(envelope).encode()

    def run(self, *names, step=0, **options):
        return self.root.pra_run(self.envelope(*(self.by(n, **options) for n in names),
                                               step=step))


def signed(root, tokens, **doc):
    return Signed(root, tokens, document(root, **doc))


def reason(proc):
    return refusal(proc)["reason"]


def test_one_of_one_ed25519_is_accepted_and_logged(v2root, tokens):
    doc = signed(v2root, tokens)
    got = result(v2root.pra_run(doc.envelope(doc.by("alice"), trace="t-42")))
    assert got["outcome"] == "changed" and got["principals"] == ["alice"]
    assert got["proposal"] == "prop-2" and got["step"] == 0 and "approver" not in got
    line = v2root.log()[-1]
    assert line["decision"] == "accepted" and line["verified"] is True
    assert line["principals"] == ["alice"] and line["required"] == 1
    assert line["trace"] == "t-42" and line["nonce"] == json.loads(doc.text)["steps"][0]["nonce"]
    assert line["document_sha256"] == hashlib.sha256(doc.data).hexdigest()
    assert line["signers"][0]["signature_type"] == "ssh-ed25519"
    assert line["signers"][0]["principal"] == "alice"


def test_v1_is_still_accepted(v2root):
    got = result(v2root.pra_run(v2root.envelope(v2root.document())))
    assert got["outcome"] == "changed" and got["approver"] == "alice"
    assert got["principals"] == ["alice"]


def test_webauthn_with_presence_and_verification_is_accepted(v2root, tokens):
    v2root.write_catalog(settings={"require_user_verification": True})
    got = result(signed(v2root, tokens).run("dave", counter=0))
    assert got["outcome"] == "changed" and got["principals"] == ["dave"]
    sig = v2root.log()[-1]["signers"][0]
    assert sig["signature_type"] == "webauthn-sk-ecdsa-sha2-nistp256@openssh.com"
    assert (sig["flags"], sig["counter"], sig["origin"]) == (UP | UV, 0, ORIGIN)


def test_sk_ed25519_is_accepted(v2root, tokens):
    assert result(signed(v2root, tokens).run("frank"))["principals"] == ["frank"]


def test_without_presence_is_refused(v2root, tokens):
    assert reason(signed(v2root, tokens).run("dave", flags=UV)) == "user_presence_missing"
    assert reason(signed(v2root, tokens).run("frank", flags=0)) == "user_presence_missing"


@pytest.mark.parametrize("where", ["host", "action"])
def test_without_verification_where_required_is_refused(v2root, tokens, where):
    if where == "host":
        v2root.write_catalog(settings={"require_user_verification": True})
    else:
        action = v2root.catalog()["actions"]["touch_file"]
        v2root.write_catalog({"touch_file": dict(action, user_verification=True)})
    assert reason(signed(v2root, tokens).run("dave", flags=UP)) == "user_verification_missing"
    assert reason(signed(v2root, tokens).run("alice")) == "user_verification_missing"
    assert result(signed(v2root, tokens).run("dave"))["outcome"] == "changed"


def test_without_verification_where_not_required_is_accepted(v2root, tokens):
    assert result(signed(v2root, tokens).run("dave", flags=UP))["outcome"] == "changed"


def test_security_keys_only(v2root, tokens):
    v2root.write_catalog(settings={"signers": "security_keys"})
    assert reason(signed(v2root, tokens).run("alice")) == "signer_not_security_key"
    assert result(signed(v2root, tokens).run("dave"))["outcome"] == "changed"


def test_webauthn_origins(v2root, tokens):
    v2root.write_catalog(settings={"webauthn_origins": ["https://other.example.com"]})
    assert reason(signed(v2root, tokens).run("dave")) == "webauthn_origin_mismatch"
    v2root.write_catalog(settings={"webauthn_origins": ["https://other.example.com", ORIGIN]})
    assert result(signed(v2root, tokens).run("dave"))["outcome"] == "changed"


def test_two_of_two_and_the_duplicate(v2root, tokens):
    action = v2root.catalog()["actions"]["touch_file"]
    v2root.write_catalog({"touch_file": dict(action, approvals=2)})
    one = refusal(signed(v2root, tokens).run("alice"))
    assert one["reason"] == "not_enough_approvals" and one["detail"] == "1 of 2 approvals"
    assert reason(signed(v2root, tokens).run("alice", "alice")) == "duplicate_principal"
    doc = signed(v2root, tokens)
    twice = doc.envelope(doc.by("dave", counter=1), doc.by("dave", counter=2))
    assert reason(v2root.pra_run(twice)) == "duplicate_principal"
    three = doc.envelope(doc.by("alice"), doc.by("dave"), doc.by("alice"))
    assert reason(v2root.pra_run(three)) == "duplicate_principal"
    got = result(doc.run("dave", "alice"))
    assert got["outcome"] == "changed" and got["principals"] == ["alice", "dave"]
    assert v2root.log()[-1]["required"] == 2


@pytest.mark.parametrize("asked, catalog, host, required", [
    (2, 1, 1, 2), (1, 2, 1, 2), (1, 1, 2, 2), (3, 2, 1, 3), (1, 1, 1, 1)])
def test_required_is_the_largest_rule(v2root, tokens, asked, catalog, host, required):
    action = v2root.catalog()["actions"]["touch_file"]
    v2root.write_catalog({"touch_file": dict(action, approvals=catalog)},
                         settings={"min_approvals": host})
    signers = ["alice", "bob", "dave"]
    if required > 1:
        short = refusal(signed(v2root, tokens, approvals=asked).run(*signers[:required - 1]))
        assert short["detail"] == f"{required - 1} of {required} approvals"
    got = result(signed(v2root, tokens, approvals=asked).run(*signers[:required]))
    assert len(got["principals"]) == required


def test_v1_meets_the_same_rules(v2root):
    action = v2root.catalog()["actions"]["touch_file"]
    v2root.write_catalog({"touch_file": dict(action, approvals=2)})
    assert refusal(v2root.pra_run(v2root.envelope(v2root.document())))["detail"] == (
        "1 of 2 approvals")
    v2root.write_catalog(settings={"signers": "security_keys"})
    assert reason(v2root.pra_run(v2root.envelope(v2root.document()))) == (
        "signer_not_security_key")


@pytest.mark.parametrize("who, expected", [
    ("unknown", "unknown_signer"), ("stranger", "unknown_signer"),
    ("carol", "signer_not_valid")])
def test_signers_allowed_signers_does_not_take(v2root, tokens, who, expected):
    assert reason(signed(v2root, tokens).run(who)) == expected
    assert v2root.log()[-1]["verified"] is False


def test_one_key_under_two_principals_is_ambiguous(v2root, tokens):
    path = v2root.path / "etc/mcp-infra/allowed_signers"
    path.write_text(path.read_text() + f"mallory {v2root.keys.public('alice')}\n")
    assert reason(signed(v2root, tokens).run("alice")) == "ambiguous_signer"


def test_document_changed_after_signing(v2root, tokens):
    doc = signed(v2root, tokens)
    changed = json.loads(doc.text)
    changed["steps"][0]["params"]["file"] = v2root.file("b")
    for name in ("alice", "dave"):
        envelope = json.loads(doc.envelope(doc.by(name)))
        envelope["document"] = canonical(changed)
        assert reason(v2root.pra_run(json.dumps(envelope).encode())) == "bad_signature"
    assert not os.path.exists(v2root.file("b"))


def test_a_signature_over_another_document(v2root, tokens):
    doc = signed(v2root, tokens)
    other = signed(v2root, tokens).data
    envelope = doc.envelope(tokens["dave"].sign(doc.data, challenge_message=other))
    assert reason(v2root.pra_run(envelope)) == "bad_signature"
    assert reason(v2root.pra_run(doc.envelope(doc.root.keys.sign(other, "alice")))) == (
        "bad_signature")


def test_replay_is_refused(v2root, tokens):
    doc = signed(v2root, tokens)
    envelope = doc.envelope(doc.by("dave"))
    assert result(v2root.pra_run(envelope))["outcome"] == "changed"
    assert reason(v2root.pra_run(envelope)) == "replayed_nonce"


def test_another_hosts_step_is_refused(v2root, tokens):
    doc = signed(v2root, tokens, steps=[step(v2root, host="target-2"), step(v2root)])
    assert reason(doc.run("alice", step=0)) == "wrong_host"
    # step 1 is this host's first: the other host's step 0 is not this host's to wait for
    assert result(doc.run("alice", step=1))["outcome"] == "changed"
    assert reason(doc.run("alice", step=2)) == "bad_envelope"


def test_plan_steps_run_in_order(v2root, tokens):
    doc = signed(v2root, tokens, steps=[step(v2root, file="a"), step(v2root, host="target-2"),
                                        step(v2root, file="b")])
    assert reason(doc.run("alice", step=2)) == "step_out_of_order"
    assert not os.path.exists(v2root.file("b"))
    assert result(doc.run("alice", step=0))["outcome"] == "changed"
    assert result(doc.run("alice", step=2))["outcome"] == "changed"
    assert reason(doc.run("alice", step=0)) == "replayed_nonce"


def test_too_many_signatures(v2root, tokens):
    doc = signed(v2root, tokens)
    assert reason(v2root.pra_run(doc.envelope(*[doc.by("alice")] * 17))) == (
        "too_many_signatures")


@pytest.mark.parametrize("signature, expected", [
    ("not a signature", "bad_signature"),
    ("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n", "bad_signature"),
])
def test_malformed_signature(v2root, tokens, signature, expected):
    doc = signed(v2root, tokens)
    assert reason(v2root.pra_run(doc.envelope(doc.by("alice"), signature))) == expected
    assert v2root.log()[-1]["ssh_keygen"] == []  # refused before any ssh-keygen ran


def test_unsupported_key_type(v2root, tokens, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(tmp_path / "ec")],
                   check=True)
    doc = signed(v2root, tokens)
    signature = subprocess.run(["ssh-keygen", "-Y", "sign", "-f", str(tmp_path / "ec"), "-n",
                                NAMESPACE, "-"], input=doc.data, capture_output=True,
                               check=True).stdout.decode()
    assert reason(v2root.pra_run(doc.envelope(signature))) == "unsupported_key_type"


def test_wrong_namespace(v2root, tokens):
    doc = signed(v2root, tokens)
    signature = v2root.keys.sign(doc.data, "alice", namespace="file")
    assert reason(v2root.pra_run(doc.envelope(signature))) == "wrong_namespace"


@pytest.mark.parametrize("change, expected", [
    (lambda d: d.update(approvals=0), "bad_document"),
    (lambda d: d.update(approvals=10), "bad_document"),
    (lambda d: d.update(steps=[]), "bad_document"),
    (lambda d: d["steps"].append(dict(d["steps"][0])), "bad_document"),  # same nonce twice
    (lambda d: d["steps"][0].update(extra="x"), "bad_document"),
    (lambda d: d.update(approver="alice"), "bad_document"),
    (lambda d: d.update(v=3), "bad_document"),
])
def test_bad_v2_documents(v2root, tokens, change, expected):
    doc = document(v2root)
    change(doc)
    assert reason(Signed(v2root, tokens, doc).run("alice")) == expected


def test_versions_do_not_mix(v2root, tokens):
    doc = signed(v2root, tokens)
    v1_envelope = json.dumps({"document": doc.text, "signature": doc.by("alice")}).encode()
    assert reason(v2root.pra_run(v1_envelope)) == "bad_envelope"
    v1_text = canonical(v2root.document())
    v2_envelope = json.dumps({"document": v1_text,
                              "signatures": [v2root.keys.sign(v1_text.encode())]}).encode()
    assert reason(v2root.pra_run(v2_envelope)) == "bad_envelope"


def test_list_shows_the_approval_rules(v2root):
    action = v2root.catalog()["actions"]["touch_file"]
    v2root.write_catalog({"touch_file": dict(action, approvals=2, user_verification=True)},
                         settings={"min_approvals": 2, "signers": "security_keys",
                                   "webauthn_origins": [ORIGIN]})
    done = v2root.pra_exec("list")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert {k: listed["settings"][k] for k in ("min_approvals", "require_user_verification",
                                               "signers", "webauthn_origins")} == {
        "min_approvals": 2, "require_user_verification": False, "signers": "security_keys",
        "webauthn_origins": [ORIGIN]}
    touch = next(a for a in listed["actions"] if a["name"] == "touch_file")
    assert (touch["approvals"], touch["user_verification"]) == (2, True)
