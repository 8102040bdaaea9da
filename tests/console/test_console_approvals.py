"""Approving and rejecting in the console, over real HTTP with simulated passkeys: the
SSHSIG the console stores verifies with stock ssh-keygen; a substituted document, a missing
flag, another credential, a second approval by the same operator are refused; hostile
proposals render inert on the list and detail pages."""

import html
import re
from html.parser import HTMLParser

import pytest
from sshsig_support import UP, ssh_keygen_verify
from webauthn_support import Passkey

HOSTILE = ("<script>alert(1)</script> <img src=x onerror=alert(2)> [bold]markup[/] "
           "\x1b[31mred\x1b[0m \u202eevil\u202c \u2066iso\u2069 zero\u200bwidth \x07 "
           "\"quoted' &amp; </td></tr></table><form action=//evil>")
UNPRINTABLE = ["\x1b", "\u202e", "\u202c", "\u2066", "\u2069", "\u200b", "\x07"]
TAGS = {"html", "head", "meta", "title", "link", "script", "body", "header", "a", "span",
        "b", "form", "input", "button", "main", "h1", "h2", "table", "thead", "tbody", "tr",
        "th", "td", "code", "br", "p", "i", "pre", "ul", "li", "label", "textarea", "section"}


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, name, value) for name, value in attrs)


def assert_inert(page: str) -> None:
    """Only the console's own elements, no event handlers, one script (the console's), and
    no character of the hostile text reaches the page as it is."""
    parser = Tags()
    parser.feed(page)
    assert set(parser.tags) <= TAGS, set(parser.tags) - TAGS
    assert not [a for a in parser.attrs if a[1].startswith("on")]
    assert [a for a in parser.attrs if a[0] == "script"] == [("script", "src",
                                                              "/static/console.js"),
                                                             ("script", "defer", None)]
    assert parser.tags.count("form") <= 2  # logout, and reject on a detail page
    assert [a[2] for a in parser.attrs if a[:2] == ("form", "action")
            if not a[2].startswith("/")] == []
    for char in UNPRINTABLE:
        assert char not in page, repr(char)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<span class="esc">\\u202e</span>' in page


def propose(console, rationale="the service is down since 03:00", required=1, **fields):
    values = {"host": "web-01", "action": "restart_service", "params": {"unit": "nginx"},
              "rationale": rationale, "max_window": 3600,
              "preview": {"available": True, "command": "systemctl is-active nginx",
                          "exit_code": 3, "output": "inactive\nfailed", "explains": "down",
                          "prediction": "would restart"},
              "action_info": {"description": "Restart a systemd service", "runs_as": "root"},
              **fields}
    return console.store.create(required=required, **values)


@pytest.fixture
def alice(console):
    browser = console.client()
    passkey, _ = browser.enroll("alice")
    assert browser.login(passkey).status_code == 200
    browser.passkey = passkey
    yield browser
    browser.close()


def shown_document(browser, proposal_id) -> str:
    page = browser.page(f"/p/{proposal_id}")[0]
    return html.unescape(re.search(r'<pre id="document">(.*?)</pre>', page, re.DOTALL).group(1))


def approve(browser, proposal_id, body):
    return browser.post(f"/p/{proposal_id}/approve", json=body,
                        headers={"X-CSRF-Token": browser.csrf})


def test_the_detail_page_shows_the_document_every_approver_signs(console, alice):
    p = propose(console, required=2)
    page = alice.page(f"/p/{p.id}")[0]
    document = shown_document(alice, p.id)
    assert document == console.store.get(p.id).document_text
    main = re.search(r"<main ([^>]*)>", page).group(1)
    assert f'data-proposal="{p.id}"' in main and 'data-rp-id="localhost"' in main
    assert 'data-namespace="mcp-linux-infra-approval"' in main
    assert f'data-credential="{console.registry.get("alice").credential_id}"' in main
    for element in ('id="approve"', 'id="reject-reason"', 'id="reject"', 'id="status"',
                    '<p id="approvals">0 of 2 approvals</p>'):
        assert element in page
    assert shown_document(alice, p.id) == document  # shown again: the same bytes


def test_an_approval_is_an_sshsig_that_stock_ssh_keygen_verifies(console, alice, tmp_path):
    p = propose(console)
    document = shown_document(alice, p.id)
    answer = approve(alice, p.id, alice.passkey.approve(document))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"state": "approved", "approvals": 1, "required": 1}
    signers = tmp_path / "allowed_signers"
    signers.write_text("\n".join(console.registry.allowed_signers_lines()) + "\n")
    (signature,) = console.store.signatures(p.id)
    done = ssh_keygen_verify(signers, "alice", document.encode(), signature, tmp_path)
    assert done.returncode == 0, done.stderr
    approved = console.store.get(p.id)
    assert approved.approvals[0]["principal"] == "alice"
    assert approved.approvals[0]["method"] == "webauthn"


def test_two_operators_make_a_two_person_approval(console, alice):
    p = propose(console, required=2)
    document = shown_document(alice, p.id)
    assert approve(alice, p.id, alice.passkey.approve(document)).json()["approvals"] == 1
    again = approve(alice, p.id, alice.passkey.approve(document))
    assert (again.status_code, again.json()["error"]) == (409, "already_approved")
    with console.client() as bob:
        passkey, _ = bob.enroll("bob")
        bob.login(passkey)
        assert shown_document(bob, p.id) == document
        page = bob.page(f"/p/{p.id}")[0]
        assert '<p id="approvals">1 of 2 approvals</p>' in page
        done = approve(bob, p.id, passkey.approve(document))
        assert done.json() == {"state": "approved", "approvals": 2, "required": 2}
    assert sorted(console.store.get(p.id).principals) == ["alice", "bob"]


def test_a_substituted_document_is_refused(console, alice):
    p = propose(console)
    document = shown_document(alice, p.id)
    forged = document.replace('"nginx"', '"sshd"')
    assert forged != document
    answer = approve(alice, p.id, alice.passkey.approve(forged))
    assert (answer.status_code, answer.json()["error"]) == (409, "document_changed")
    assert console.store.get(p.id).approvals == []
    assert '"console_approval_refused"' in console.audit_text.getvalue()


def test_flags_credentials_and_origins_are_checked(console, alice):
    p = propose(console)
    document = shown_document(alice, p.id)
    for body, code in ((alice.passkey.approve(document, flags=UP), "user_verification_missing"),
                       (Passkey("localhost", console.origin).approve(document),
                        "wrong_credential"),
                       (alice.passkey.approve(document, origin="https://evil.example"),
                        "wrong_origin")):
        answer = approve(alice, p.id, body)
        assert answer.json()["error"] == code
    assert console.store.get(p.id).approvals == []


def test_reject_with_a_reason(console, alice):
    p = propose(console)
    answer = alice.post(f"/p/{p.id}/reject", data={"csrf": alice.csrf, "reason": "\u202eno"})
    assert answer.headers["location"] == f"/p/{p.id}?status=bad_reason"
    assert console.store.get(p.id).state == "pending"
    answer = alice.post(f"/p/{p.id}/reject", data={"csrf": alice.csrf,
                                                   "reason": "not during business hours"})
    assert (answer.status_code, answer.headers["location"]) == (303,
                                                                 f"/p/{p.id}?status=rejected")
    rejected = console.store.get(p.id)
    assert (rejected.state, rejected.reason) == ("rejected", "not during business hours")
    page = alice.page(f"/p/{p.id}?status=rejected")[0]
    assert '<p id="status" role="status">rejected</p>' in page
    assert 'id="approve"' not in page and "rejected by alice" in page


def test_hostile_proposals_render_inert(console, alice):
    p = propose(console, rationale=HOSTILE, host="web-01" + HOSTILE,
                params={"unit": HOSTILE},
                preview={"available": True, "command": HOSTILE, "exit_code": 0,
                         "output": HOSTILE + "\n" + HOSTILE, "explains": HOSTILE,
                         "prediction": HOSTILE},
                action_info={"description": HOSTILE, "runs_as": HOSTILE},
                proposed_by=HOSTILE, trace=HOSTILE)
    listing = alice.page("/")[0]
    assert f'<tr data-proposal="{p.id}"' in listing
    assert_inert(listing)
    detail = alice.page(f"/p/{p.id}")[0]
    assert_inert(detail)
    # no document the target would take can hold these values: nothing is offered to sign
    assert 'id="approve"' not in detail and 'id="problem"' in detail
    assert 'id="document"' not in detail


def test_a_hostile_rationale_beside_a_signable_document(console, alice):
    p = propose(console, rationale=HOSTILE,
                preview={"available": True, "command": "systemctl is-active nginx",
                         "exit_code": 3, "output": HOSTILE, "explains": HOSTILE},
                action_info={"description": HOSTILE, "runs_as": "root"})
    detail = alice.page(f"/p/{p.id}")[0]
    assert_inert(detail)
    assert 'id="approve"' in detail
    assert shown_document(alice, p.id) == console.store.get(p.id).document_text


def test_the_list_shows_pending_and_recent_proposals(console, alice):
    first, second = propose(console), propose(console, required=2)
    console.store.reject(first.id, "alice", "no")
    page = alice.page("/")[0]
    rows = re.findall(r'<tr data-proposal="(p[0-9a-f]+)"', page)
    assert rows == [second.id, first.id]  # what waits first, then the recent rest
    assert "0 of 2 approvals" in page and "Restart a systemd service" in page


def test_the_status_shown_is_only_ever_a_code(console, alice):
    p = propose(console)
    page = alice.page(f"/p/{p.id}?status=%3Cb%3Eyou%20approved%3C%2Fb%3E")[0]
    assert '<p id="status" role="status"></p>' in page and "you approved" not in page


def test_a_form_past_the_body_limit_is_refused(console, alice):
    p = propose(console)
    answer = alice.post(f"/p/{p.id}/reject", data={"csrf": alice.csrf, "reason": "x" * 70000})
    assert (answer.status_code, answer.json()["error"]) == (413, "too_large")
    assert console.store.get(p.id).state == "pending"


def test_approvals_are_rate_limited(console, alice):
    p = propose(console)
    codes = [approve(alice, p.id, {}).status_code for _ in range(22)]
    assert codes[:20] == [400] * 20 and codes[20:] == [429, 429]
