"""Approval documents, envelopes, the time window and signature verification (in-process)."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest
from mcp_infra_target.actions import approval, signature
from mcp_infra_target.core.refusal import Refusal
from pra_support import canonical

DOC = {"v": 1, "proposal": "p-1", "host": "h1", "action": "restart_service",
       "params": {"unit": "nginx"}, "nonce": "n" * 16, "not_before": 1000, "not_after": 2000,
       "approver": "alice@example.org"}


def reason(call, *args):
    with pytest.raises(Refusal) as caught:
        call(*args)
    return caught.value.reason


def test_canonical_form_is_sorted_compact_utf8():
    assert approval.canonical({"b": "é", "a": [1, {"d": 2, "c": 3}]}) == \
        '{"a":[1,{"c":3,"d":2}],"b":"é"}'.encode()


def test_parse_document_round_trip():
    assert approval.parse_document(canonical(DOC)) == DOC


@pytest.mark.parametrize("text, expected", [
    (canonical(DOC).replace(":", ": "), "not_canonical"),
    (canonical(DOC) + " ", "not_canonical"),
    (canonical(DOC).replace('"v":1', '"v":1e0'), "not_canonical"),
    (canonical(DOC).replace("nginx", "ngin\\u0078"), "not_canonical"),
    (canonical(dict(DOC, params={"unit": "é"})).replace("é", "\\u00e9"), "not_canonical"),
    ("[]", "bad_document"),
    ("", "bad_document"),
    ("NaN", "bad_document"),
    (canonical({k: v for k, v in DOC.items() if k != "host"}), "bad_document"),
    (canonical(dict(DOC, extra=1)), "bad_document"),
    (canonical(dict(DOC, v=True)), "bad_document"),
    (canonical(dict(DOC, not_before=1.5)), "bad_document"),
    (canonical(dict(DOC, not_after=2 ** 41)), "bad_document"),
    (canonical(dict(DOC, params={"Unit": "nginx"})), "bad_document"),
    (canonical(dict(DOC, params={"u": "x" * 5000})), "bad_document"),
    (canonical(dict(DOC, params={"p%d" % i: "x" for i in range(17)})), "bad_document"),
    (canonical(dict(DOC, approver="alice\n")), "bad_document"),
    (canonical(dict(DOC, nonce="n" * 15)), "bad_document"),
])
def test_parse_document_refuses(text, expected):
    assert reason(approval.parse_document, text) == expected


@pytest.mark.parametrize("now, expected", [
    (940, None),             # 60 s early: clock skew allowance
    (939, "not_yet_valid"),
    (2000, None),            # last valid second
    (2001, "expired"),
])
def test_window_edges(now, expected):
    if expected is None:
        approval.check_window(DOC, now, 60, 3600)
    else:
        assert reason(approval.check_window, DOC, now, 60, 3600) == expected


def test_window_length():
    assert reason(approval.check_window, dict(DOC, not_after=4601), 1500, 60, 3600) == \
        "window_too_long"
    approval.check_window(dict(DOC, not_after=4600), 1500, 60, 3600)
    assert reason(approval.check_window, dict(DOC, not_after=1000), 1000, 60, 3600) == \
        "bad_window"


@pytest.mark.parametrize("raw, expected", [
    (b'{"document": "d", "signature": "s", "trace": "t-1"}', None),
    (b'{"document": "d"}', "missing_signature"),
    (b'{"document": "d", "signature": null}', "missing_signature"),
    (b'{"document": "d", "signature": 5}', "bad_envelope"),
    (b'{"signature": "s"}', "bad_envelope"),
    (b'{"document": "d", "signature": "s", "trace": 1}', "bad_envelope"),
    (b'{"document": "d", "signature": "s", "x": 1}', "bad_envelope"),
    (b'{"document": "d", "signature": "s", "signature": "t"}', "bad_envelope"),
    (b"\xef\xbb\xbf{}", "bad_envelope"),
    pytest.param(b"[" * 100000, "bad_envelope", id="nested-100000-deep"),
    pytest.param(b'{"document": "d", "signatures": []}', "missing_signature", id="v2-none"),
    pytest.param(b'{"document": "d", "signatures": "s"}', "bad_envelope", id="v2-not-a-list"),
    pytest.param(b'{"document": "d", "signatures": ["s", 1]}', "bad_envelope", id="v2-non-str"),
    pytest.param(b'{"document": "d", "signatures": ["s"], "signature": "s"}', "bad_envelope",
                 id="v1-and-v2"),
    pytest.param(b'{"document": "d", "signature": "s", "step": 0}', "bad_envelope",
                 id="v1-with-step"),
    pytest.param(b'{"document": "d", "signatures": ["s"], "step": -1}', "bad_envelope",
                 id="v2-negative-step"),
    pytest.param(b'{"document": "d", "signatures": ["s"], "step": true}', "bad_envelope",
                 id="v2-bool-step"),
    pytest.param(b'{"document": "d", "signatures": ["s"], "step": 64}', "bad_envelope",
                 id="v2-step-64"),
    pytest.param(json.dumps({"document": "d", "signatures": ["s"] * 17}).encode(),
                 "too_many_signatures", id="v2-17-signatures"),
])
def test_parse_envelope(raw, expected):
    if expected is None:
        assert approval.parse_envelope(raw) == {"version": 1, "document": "d",
                                                "signatures": ["s"], "step": 0, "trace": "t-1"}
    else:
        assert reason(approval.parse_envelope, raw) == expected


@pytest.mark.parametrize("data, limit, timeout, expected", [
    pytest.param(b"12345", 5, 1, b"12345", id="at-the-limit"),
    pytest.param(b"123456", 5, 1, "bad_envelope", id="over-the-limit"),
    pytest.param(b"slow", 5, 0.3, "bad_envelope", id="never-closed"),
])
def test_read_envelope_limit_and_timeout(data, limit, timeout, expected):
    read_fd, write_fd = os.pipe()
    os.write(write_fd, data)
    if expected == b"12345":
        os.close(write_fd)
    started = time.monotonic()
    try:
        if isinstance(expected, bytes):
            assert approval.read_envelope(read_fd, limit, timeout) == expected
        else:
            assert reason(approval.read_envelope, read_fd, limit, timeout) == expected
            assert time.monotonic() - started < 2
    finally:
        if expected != b"12345":
            os.close(write_fd)
        os.close(read_fd)


def test_read_envelope_reads_across_chunks():
    read_fd, write_fd = os.pipe()

    def feed():
        for _ in range(3):
            os.write(write_fd, b"x" * 50000)
            time.sleep(0.05)
        os.close(write_fd)

    thread = threading.Thread(target=feed)
    thread.start()
    assert len(approval.read_envelope(read_fd, 200000, 5)) == 150000
    thread.join()
    os.close(read_fd)


@pytest.mark.parametrize("stderr, expected", [
    ("Could not verify signature.\n", "unknown_signer"),
    ("", "unknown_signer"),
    ("Couldn't verify signature: namespace does not match\nCould not verify signature.\n",
     "wrong_namespace"),
    ('as:3: key is not permitted for use in signature namespace "x"\n', "unknown_signer"),
    ("as:3: key has expired: verify time ...\n", "signer_not_valid"),
    ("as:5: key is not yet valid: verify time ...\n", "signer_not_valid"),
    ("Signature verification failed: incorrect signature\n", "bad_signature"),
    ("sshsig_peek_hashalg: parse signature object: incomplete message\n", "bad_signature"),
    ("something new in a later OpenSSH\n", "bad_signature"),
])
def test_classify_ssh_keygen_errors(stderr, expected):
    assert signature.classify(stderr).reason == expected


def test_verify_in_process_leaves_no_scratch(keys, tmp_path):
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(keys.allowed_signers())
    scratch = tmp_path / "run"
    scratch.mkdir()
    text = canonical(DOC).encode()
    details = {}
    principal, fingerprint = signature.verify(text, keys.sign(text), "alice", str(allowed),
                                              str(scratch), details)
    assert principal == "alice" and fingerprint.startswith("SHA256:") and "Good" in details["ssh_keygen"]
    assert list(scratch.iterdir()) == []
    with pytest.raises(Refusal) as caught:
        signature.verify(text, keys.sign(text), "bob", str(allowed), str(scratch), {})
    assert caught.value.reason == "unknown_signer"
    assert list(scratch.iterdir()) == []
    with pytest.raises(Refusal) as caught:
        signature.verify(text, keys.sign(text), "alice", str(tmp_path / "none"), str(scratch), {})
    assert caught.value.reason == "config_error"
