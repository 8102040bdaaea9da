"""What the console stores is what a target takes: two operators approve in the console with
simulated passkeys, their keys are deployed to a test root's allowed_signers, and the real
pra-run (no lab) refuses one signature as "1 of 2" and runs the action with both, having
checked presence, verification and the console's origin itself."""

import json

from pra_support import HOST, refusal, result
from sshsig_support import UP, UV, WEBAUTHN


def test_the_target_runs_what_two_operators_approved_in_the_console(console, root):
    root.write_catalog(settings={"require_user_verification": True, "min_approvals": 2,
                                 "webauthn_origins": [console.origin]})
    p = console.store.create(HOST, "touch_file", {"file": root.file("a")},
                             "the marker file is missing since the last deploy", 600,
                             required=2)
    browsers = [console.client(), console.client()]
    try:
        for name, browser in zip(("alice", "bob"), browsers, strict=True):
            passkey, _ = browser.enroll(name)
            assert browser.login(passkey).status_code == 200
            document = console.store.prepare_document(p.id, 600).document_text
            assert browser.get(f"/p/{p.id}").status_code == 200
            answer = browser.post(f"/p/{p.id}/approve", json=passkey.approve(document),
                                  headers={"X-CSRF-Token": browser.csrf})
            assert answer.status_code == 200, answer.text
    finally:
        for browser in browsers:
            browser.close()
    assert console.store.get(p.id).state == "approved"
    signers = root.path / "etc/mcp-infra/allowed_signers"
    signers.write_text(signers.read_text() + "\n".join(
        console.registry.allowed_signers_lines()) + "\n")
    document, signatures = console.store.get(p.id).document_text, console.store.signatures(p.id)

    def run(*sigs):
        return root.pra_run(json.dumps({"document": document, "signatures": list(sigs),
                                        "step": 0}).encode())

    assert refusal(run(signatures[0]))["detail"] == "1 of 2 approvals"
    got = result(run(*signatures))
    assert got["outcome"] == "changed" and sorted(got["principals"]) == ["alice", "bob"]
    for signer in root.log()[-1]["signers"]:
        assert signer["signature_type"] == WEBAUTHN
        assert (signer["flags"] & (UP | UV), signer["origin"]) == (UP | UV, console.origin)
