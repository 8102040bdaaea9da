"""Real Chromium's WebAuthn approvals sent to the real pra-run (a test root, no lab): the
target accepts what a browser signs over the document it shows, with presence and
verification; refuses it without verification where required, from an origin it does not
pin, and counts two browsers' passkeys as two principals but one passkey twice as one.
(The simulated signer's cases are tests/target/actions/test_run_v2.py; this is the same
target fed by the browser.)"""
from __future__ import annotations

import json
import os
import time

import pytest
from pra_support import HOST, canonical, refusal, result
from signing_page_support import SigningPage, enroll, sign, signers_line
from sshsig_support import UP, UV, WEBAUTHN


@pytest.fixture(scope="module")
def page():
    with SigningPage() as served:
        yield served


def new_document(root, page, approvals: int = 1) -> str:
    """A v2 document touching work/a on this test root's host, shown by the page."""
    now = int(time.time())
    page.document = canonical({
        "v": 2, "id": "p-browser", "approvals": approvals,
        "not_before": now - 10, "not_after": now + 600,
        "steps": [{"host": HOST, "action": "touch_file", "params": {"file": root.file("a")},
                   "nonce": os.urandom(16).hex()}]})
    return page.document


def operator(tab, root, page, name: str, query: str = ""):
    """`name` registers a passkey in `tab` and is deployed to the root's allowed_signers."""
    credential, authenticator = enroll(tab, page, name, query)
    path = root.path / "etc/mcp-infra/allowed_signers"
    path.write_text(path.read_text() + signers_line(name, credential))
    return credential, authenticator


def run(root, document: str, *signatures: str):
    return root.pra_run(json.dumps({"document": document, "signatures": list(signatures),
                                    "step": 0}).encode())


def test_target_runs_what_the_browser_approved(tab, root, page):
    root.write_catalog(settings={"require_user_verification": True,
                                 "webauthn_origins": [page.url]})
    document = new_document(root, page)
    credential, _ = operator(tab, root, page, "dave")
    got = result(run(root, document, sign(tab, credential)))
    assert got["outcome"] == "changed" and got["principals"] == ["dave"]
    signer = root.log()[-1]["signers"][0]
    assert signer["signature_type"] == WEBAUTHN
    assert (signer["flags"] & (UP | UV), signer["origin"]) == (UP | UV, page.url)


def test_target_refuses_a_browser_signature_without_verification_where_required(tab, root,
                                                                                 page):
    document = new_document(root, page)
    credential, authenticator = operator(tab, root, page, "dave", "?uv=discouraged")
    authenticator.set_user_verified(False)
    signature = sign(tab, credential)
    root.write_catalog(settings={"require_user_verification": True})
    assert refusal(run(root, document, signature))["reason"] == "user_verification_missing"
    root.write_catalog()
    assert result(run(root, document, signature))["outcome"] == "changed"


def test_target_refuses_an_origin_it_does_not_pin(tab, root, page):
    root.write_catalog(settings={"webauthn_origins": ["https://approve.example.com"]})
    document = new_document(root, page)
    credential, _ = operator(tab, root, page, "dave")
    assert refusal(run(root, document, sign(tab, credential)))["reason"] == \
        "webauthn_origin_mismatch"


def test_two_browsers_are_two_principals_one_passkey_twice_is_one(tab, open_tab, root, page):
    action = root.catalog()["actions"]["touch_file"]
    root.write_catalog({"touch_file": dict(action, approvals=2)})
    document = new_document(root, page, approvals=2)
    dave_tab, erin_tab = tab, open_tab()
    dave, _ = operator(dave_tab, root, page, "dave")
    erin, _ = operator(erin_tab, root, page, "erin")
    by_dave, again, by_erin = sign(dave_tab, dave), sign(dave_tab, dave), sign(erin_tab, erin)
    assert again != by_dave
    assert refusal(run(root, document, by_dave))["detail"] == "1 of 2 approvals"
    assert refusal(run(root, document, by_dave, again))["reason"] == "duplicate_principal"
    got = result(run(root, document, by_erin, by_dave))
    assert got["outcome"] == "changed" and got["principals"] == ["dave", "erin"]
