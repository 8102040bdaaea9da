"""Forged, altered and replayed approvals against the real pra-run, with real ssh-keygen keys.

Every forgery must be refused (exit 126, one JSON refusal line), leave its log line with the
same reason, run nothing (the action's target file stays absent) and, unless the signature
itself was good, leave the nonce unused. A refusal before the signature verified leaves only
digests and sizes of what was sent in the log, never its text.
"""
from __future__ import annotations

import hashlib
import json
import os
import time

import pytest
from pra_support import canonical, refusal, result

# refused before an operator's signature vouched for the document
UNVERIFIED = {"bad_envelope", "missing_signature", "not_canonical", "bad_document",
              "bad_signature", "unknown_signer", "wrong_namespace", "signer_not_valid",
              "bad_command"}
# all a record may hold until then: digests and sizes of the input, and why it was refused
UNVERIFIED_KEYS = {"event", "time", "sudo_user", "decision", "verified", "durations_ms",
                   "refusal", "envelope_sha256", "envelope_bytes", "trace", "document_sha256",
                   "document_bytes", "signature_bytes", "ssh_keygen"}

@pytest.fixture
def now() -> int:
    """The clock, read when the test starts (never once at import: a slow suite may reach a
    test minutes after collection)."""
    return int(time.time())


def assert_refused(root, proc, reason):
    """Refused with `reason`, logged with the same reason, nothing run; unverified input
    logged only by digest."""
    answer = refusal(proc)
    assert answer["reason"] == reason, answer
    assert proc.stdout == b""
    last = root.log()[-1]
    assert last["decision"] == "refused" and last["refusal"]["reason"] == reason, last
    assert root.syslog()[-1] == last
    if reason in UNVERIFIED:
        assert last["verified"] is False and set(last) <= UNVERIFIED_KEYS, (
            sorted(set(last) - UNVERIFIED_KEYS))
    else:
        assert last["verified"] is True and last["signer_key"].startswith("SHA256:"), last
    assert not os.path.exists(root.file("a"))
    return last


def envelope_with(root, signature=None, **doc_overrides):
    doc = root.document(**doc_overrides)
    text = canonical(doc)
    data = {"document": text}
    if signature is not None:
        data["signature"] = signature
    return json.dumps(data).encode(), doc


def test_no_signature(root):
    data, _ = envelope_with(root)
    assert_refused(root, root.pra_run(data), "missing_signature")


def test_empty_signature(root):
    data, _ = envelope_with(root, signature="")
    assert_refused(root, root.pra_run(data), "missing_signature")


@pytest.mark.parametrize("garbage", [
    "garbage",
    "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n",
    "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ==\n-----END SSH SIGNATURE-----\n",
    "-----BEGIN SSH SIGNATURE-----\n$(touch /tmp/x)\n-----END SSH SIGNATURE-----\n",
])
def test_garbage_signature(root, garbage):
    data, _ = envelope_with(root, signature=garbage)
    assert_refused(root, root.pra_run(data), "bad_signature")


def test_signature_of_another_type_is_not_a_string(root):
    data, _ = envelope_with(root, signature=["x"])
    assert_refused(root, root.pra_run(data), "bad_envelope")


def test_tampered_params(root):
    """Signature made over params {file: b}, document says {file: a}."""
    signed = canonical(root.document(params={"file": root.file("b")}))
    doc = json.loads(signed)
    doc["params"] = {"file": root.file("a")}
    forged = {"document": canonical(doc),
              "signature": root.keys.sign(signed.encode())}
    assert_refused(root, root.pra_run(json.dumps(forged).encode()), "bad_signature")
    assert not os.path.exists(root.file("b"))


def test_tampered_action(root):
    signed = canonical(root.document())
    forged = {"document": signed.replace('"touch_file"', '"touch_windowed"'),
              "signature": root.keys.sign(signed.encode())}
    assert_refused(root, root.pra_run(json.dumps(forged).encode()), "bad_signature")


@pytest.mark.parametrize("reserialise", [
    lambda d: json.dumps(d, sort_keys=True),                        # spaces
    lambda d: json.dumps(d, separators=(",", ":")),                 # key order
    lambda d: json.dumps(d, sort_keys=True, separators=(",", ":"), indent=0),
    lambda d: canonical(d) + "\n",                                  # trailing newline
    lambda d: canonical(d).replace("alice", "\\u0061lice"),         # escaped letter
    lambda d: canonical(d).replace('"v":1', '"v":1.0'),             # other number form
])
def test_validly_signed_but_not_canonical(root, reserialise):
    """Even a good signature over a non-canonical serialisation is refused."""
    text = reserialise(root.document())
    data = root.envelope(text=text)
    assert_refused(root, root.pra_run(data), "not_canonical" if "1.0" not in text
                   else "bad_document")


def test_duplicate_key_document(root):
    text = canonical(root.document())[:-1] + ',"approver":"alice"}'
    assert_refused(root, root.pra_run(root.envelope(text=text)), "bad_document")


def test_other_host(root):
    doc = root.document(host="target-2")
    last = assert_refused(root, root.pra_run(root.envelope(doc)), "wrong_host")
    # verified: now the signed fields are logged
    assert {k: last[k] for k in ("approver", "host", "nonce", "params", "not_after")} == {
        k: doc[k] for k in ("approver", "host", "nonce", "params", "not_after")}


def test_expired(root, now):
    doc = root.document(not_before=now - 1200, not_after=now - 600)
    assert_refused(root, root.pra_run(root.envelope(doc)), "expired")


def test_not_yet_valid(root, now):
    doc = root.document(not_before=now + 600, not_after=now + 1200)
    assert_refused(root, root.pra_run(root.envelope(doc)), "not_yet_valid")


def test_window_too_long(root, now):
    doc = root.document(not_before=now - 10, not_after=now - 10 + 3601)
    assert_refused(root, root.pra_run(root.envelope(doc)), "window_too_long")


def test_inverted_window(root, now):
    doc = root.document(not_before=now + 10, not_after=now - 10)
    assert_refused(root, root.pra_run(root.envelope(doc)), "bad_window")


def test_replayed_nonce(root):
    data = root.envelope()
    first = root.pra_run(data)
    assert result(first)["outcome"] == "changed"
    os.unlink(root.file("a"))
    assert_refused(root, root.pra_run(data), "replayed_nonce")


def test_nonce_reused_in_a_new_signed_document(root):
    doc = root.document()
    assert result(root.pra_run(root.envelope(doc)))["outcome"] == "changed"
    os.unlink(root.file("a"))
    again = dict(doc, proposal="prop-2")
    assert_refused(root, root.pra_run(root.envelope(again)), "replayed_nonce")


def test_nonce_burned_even_when_the_action_failed(root):
    doc = root.document(action="always_fails")
    data = root.envelope(doc)
    assert result(root.pra_run(data))["outcome"] == "failed"
    assert_refused(root, root.pra_run(data), "replayed_nonce")


def test_nonce_recorded_before_anything_runs(root):
    """The check step of this action succeeds only if the ledger entry already exists."""
    doc = root.document(action="ledger_probe", params={})
    root.write_catalog({"ledger_probe": {
        "description": "check: the ledger entry of this approval's nonce exists",
        "vars": {"entry": str(root.ledger_file(doc["nonce"]))},
        "check": ["/usr/bin/test", "-e", "{entry}"], "run": ["/usr/bin/false"],
        "verify": None}})
    out = result(root.pra_run(root.envelope(doc)))
    assert out["outcome"] == "already-satisfied", out


def test_forged_attempt_does_not_burn_the_nonce(root):
    """A refusal before the signature is checked must not consume the nonce."""
    doc = root.document()
    data, _ = envelope_with(root, signature="garbage", nonce=doc["nonce"])
    assert_refused(root, root.pra_run(data), "bad_signature")
    assert result(root.pra_run(root.envelope(doc)))["outcome"] == "changed"


def test_wrong_namespace(root):
    data = root.envelope(namespace="git")
    assert_refused(root, root.pra_run(data), "wrong_namespace")


def test_wrong_namespace_file_namespace(root):
    data = root.envelope(namespace="file")
    assert_refused(root, root.pra_run(data), "wrong_namespace")


def test_unknown_signer(root):
    doc = root.document(approver="mallory")
    assert_refused(root, root.pra_run(root.envelope(doc, signer="unknown")), "unknown_signer")


def test_unknown_key_claiming_an_operator(root):
    assert_refused(root, root.pra_run(root.envelope(signer="unknown")), "unknown_signer")


def test_approver_name_mismatch(root):
    """bob is an operator, but the document says alice approved."""
    assert_refused(root, root.pra_run(root.envelope(signer="bob")), "unknown_signer")


def test_signed_with_the_pra_key(root):
    assert_refused(root, root.pra_run(root.envelope(signer="pra")), "unknown_signer")


def test_signer_line_expired(root):
    doc = root.document(approver="carol")
    assert_refused(root, root.pra_run(root.envelope(doc, signer="carol")), "signer_not_valid")


MARK = "ATTACKER-TEXT-"
BIG_PARAMS = {f"p{i:02d}": MARK * 280 for i in range(14)}  # ~55 KB of the client's text


def _unsigned(root, doc, signature):
    text = canonical(doc)
    return json.dumps({"document": text, "signature": signature}).encode(), text


def _signed(root, doc, **kw):
    return root.envelope(doc, **kw), canonical(doc)


@pytest.mark.parametrize("make, reason", [
    pytest.param(lambda r: (MARK.encode() * 4000, None), "bad_envelope", id="not-json"),
    pytest.param(lambda r: (json.dumps({"document": "{}", "signature": "x",
                                        MARK * 3000: 1}).encode(), None),
                 "bad_envelope", id="unknown-envelope-key"),
    pytest.param(lambda r: (json.dumps({"document": MARK * 4000}).encode(), None),
                 "missing_signature", id="no-signature"),
    pytest.param(lambda r: _unsigned(r, r.document(proposal=MARK * 9, params=BIG_PARAMS),
                                     "garbage " + MARK), "bad_signature", id="garbage-signature"),
    pytest.param(lambda r: _signed(r, r.document(approver=MARK + "x", params=BIG_PARAMS),
                                   signer="unknown"), "unknown_signer", id="unknown-signer"),
    pytest.param(lambda r: _signed(r, r.document(params=BIG_PARAMS), namespace="git"),
                 "wrong_namespace", id="wrong-namespace"),
    pytest.param(lambda r: _signed(r, r.document(approver="carol", params=BIG_PARAMS),
                                   signer="carol"), "signer_not_valid", id="expired-signer"),
])
def test_unverified_input_is_logged_by_digest_only(root, make, reason):
    """Up to 64 KiB of the client's text per attempt never reaches the log (file or syslog)
    before a signature vouches for it: its digests and sizes do."""
    data, document = make(root)
    assert len(data) <= 65536
    last = assert_refused(root, root.pra_run(data), reason)
    assert last["envelope_sha256"] == hashlib.sha256(data).hexdigest()
    assert last["envelope_bytes"] == len(data)
    if document is not None:
        assert last["document_sha256"] == hashlib.sha256(document.encode()).hexdigest()
        assert last["document_bytes"] == len(document.encode())
    for path in ("var/log/mcp-infra/pra-run.log", "var/log/mcp-wrapper-audit.jsonl"):
        text = (root.path / path).read_text()
        assert MARK not in text and len(text) < 2048, (path, len(text))


def test_huge_envelope(root):
    data = root.envelope(root.document(proposal="p"))
    huge = data[:-1] + b', "pad": "' + b"x" * 70000 + b'"}'
    assert_refused(root, root.pra_run(huge), "bad_envelope")


@pytest.mark.parametrize("data", [
    b"", b"not json", b"[]", b'"document"', b"\xff\xfe", b'{"document": 1, "signature": "x"}',
    b'{"document": "{}", "signature": "x", "extra": 1}', b"{" * 100000,
    b'{"document": "{}", "document": "{}", "signature": "x"}',
])
def test_bad_envelope(root, data):
    assert_refused(root, root.pra_run(data), "bad_envelope")


def test_bad_trace(root):
    assert_refused(root, root.pra_run(root.envelope(trace="a b")), "bad_envelope")


def test_unknown_action(root):
    doc = root.document(action="rm_rf", params={})
    assert_refused(root, root.pra_run(root.envelope(doc)), "unknown_action")


@pytest.mark.parametrize("params", [
    {},                                                   # missing
    {"file": "A", "extra": "x"},                          # extra
    {"file": "/etc/shadow"},                              # not allowed
    {"file": "A; rm -rf /"},
    {"file": "$(touch /tmp/pwned)"},
    {"file": "`id`"},
    {"file": "A\n/usr/bin/id"},
    {"file": "../../../etc/passwd"},
    {"file": "-rf"},
    {"file": "A/../b"},
    {"file": "A "},
    {"file": "{file}"},
])
def test_bad_params(root, params):
    params = {k: v.replace("A", root.file("a")) for k, v in params.items()}
    doc = root.document(params=params)
    assert_refused(root, root.pra_run(root.envelope(doc)), "bad_params")


@pytest.mark.parametrize("params", [{"file": 1}, {"file": ["x"]}, {"file": None}, []])
def test_params_of_the_wrong_type(root, params):
    doc = root.document(params=params)
    assert_refused(root, root.pra_run(root.envelope(doc)), "bad_document")


@pytest.mark.parametrize("overrides", [
    {"v": 2}, {"v": True}, {"v": "1"}, {"approver": "-alice"}, {"approver": "*"},
    {"approver": "alice,bob"}, {"nonce": "short"}, {"nonce": "x" * 65}, {"nonce": "a/b" * 8},
    {"not_before": "now"}, {"not_after": True}, {"proposal": ""}, {"action": "Touch"},
    {"host": "target 1"},
])
def test_malformed_fields(root, overrides):
    doc = root.document(**overrides)
    assert_refused(root, root.pra_run(root.envelope(doc)), "bad_document")


@pytest.mark.parametrize("change", ["drop", "add"])
def test_wrong_document_keys(root, change):
    doc = root.document()
    if change == "drop":
        del doc["nonce"]
    else:
        doc["run_as"] = "root"
    assert_refused(root, root.pra_run(root.envelope(doc)), "bad_document")


def test_nan_and_lone_surrogate(root):
    text = canonical(root.document()).replace('"v":1', '"v":NaN')
    assert_refused(root, root.pra_run(root.envelope(text=text)), "bad_document")
    text = canonical(root.document()).replace("prop-1", "\\ud800")
    data = json.dumps({"document": text, "signature": "x"}).encode()
    assert_refused(root, root.pra_run(data), "bad_document")


def test_valid_approval_whose_check_and_run_fail(root):
    """Not a forgery: accepted, run, reported failed with verify output, logged, exit 1."""
    doc = root.document(action="always_fails")
    proc = root.pra_run(root.envelope(doc))
    assert proc.returncode == 1
    out = result(proc)
    assert out["outcome"] == "failed" and out["run"]["exit"] == 1
    assert out["verify"]["exit"] == 1 and out["verify"]["argv"][0] == "/usr/bin/test"
    last = root.log()[-1]
    assert last["decision"] == "accepted" and last["outcome"] == "failed"


def test_arguments_are_refused(root):
    assert_refused(root, root.pra_run(root.envelope(), args=["--help"]), "bad_command")


@pytest.mark.parametrize("var", ["SUDO_USER", "SSH_CONNECTION", "SSH_CLIENT"])
def test_test_root_refused_under_sudo_or_sshd(root, var):
    proc = root.pra_run(root.envelope(), **{var: "x"})
    answer = refusal(proc)
    assert answer["reason"] == "test_root_refused" and answer["rule"] == "bootstrap/test_root"
    assert root.log() == [] and not os.path.exists(root.file("a"))


def test_every_attempt_is_one_log_line(root):
    root.pra_run(b"junk")
    root.pra_run(root.envelope(signer="pra"))
    root.pra_run(root.envelope())
    lines = root.log()
    assert [line["decision"] for line in lines] == ["refused", "refused", "accepted"]
    assert len(root.syslog()) == 3
