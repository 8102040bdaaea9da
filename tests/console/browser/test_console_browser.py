"""The approval console driven in a real browser (headless Chromium, virtual authenticators):
two operators enroll and log in with passkeys, approve a two-person proposal in the browser,
and the signatures the server stores verify with stock ssh-keygen over the very document the
page showed; hostile proposals render inert. (Lab flow with the role and a target: the
server helper's test, tests/integration.)"""
from __future__ import annotations

import json

import pytest
from browser_support import AsgiServer
from console_browser_support import again, approve, enroll, login, run_console
from sshsig_support import SK_ECDSA, ssh_keygen_verify
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from mcp_linux_infra.operators.registry import open_registry

HOSTILE = [
    "<script>window.__pwned = 'script'</script>",
    "<img class=pwn src=x onerror=\"window.__pwned = 'img'\">",
    "<svg class=pwn onload=\"window.__pwned = 'svg'\"></svg>",
    "\"><a class=pwn href=\"javascript:window.__pwned='link'\">click</a>",
    "<style>body{display:none}</style><b class=pwn>bold</b>&amp;&lt;",
    "\x1b[31mred\x1b[0m \u202eevil\u202c \u200bzero \x07bell\r\ncarriage",
]
# What a page that rendered a payload as markup would contain.
INJECTED = ("document.querySelectorAll('.pwn, style, svg, img, [onerror], [onload],"
            " a[href^=\"javascript:\"]').length")
# Record, before any script of the page runs, every CSP violation the page would cause.
WATCH = """window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"""


@pytest.fixture
def console(tmp_path):
    with run_console(tmp_path) as running:
        yield running


def test_two_operators_enroll_log_in_and_approve_a_two_person_proposal(console, tab, open_tab,
                                                                       tmp_path):
    alice = enroll(tab, console, "alice")
    bob = enroll(open_tab(), console, "bob")
    for operator in (alice, bob):
        assert operator.key_line.startswith(SK_ECDSA + " ")
        assert operator.application == "localhost"      # the console's RP ID
        assert operator.key_line in operator.ansible
    assert alice.key_line != bob.key_line
    registry = open_registry(console.settings, console.audit())
    try:
        assert {o.name for o in registry.list()} == {"alice", "bob"}
        signers = tmp_path / "allowed_signers"
        signers.write_text("".join(line + "\n" for line in registry.allowed_signers_lines()))
    finally:
        registry.close()

    proposal_id = console.propose(approvals=2)
    login(alice, console)
    alice.tab.wait_for_selector(f'table#proposals tr[data-proposal="{proposal_id}"]')
    approve(alice, console, proposal_id)
    assert alice.tab.wait_for_text("#approvals", "1 of 2 approvals")
    shown = alice.tab.text("#document")
    proposal = console.proposal(proposal_id)
    assert shown == proposal.document_text
    assert [a["principal"] for a in proposal.approvals] == ["alice"]

    # the same operator cannot approve twice: the page no longer offers it, and the server
    # refuses a second approval from a page that still does (a stale tab, a double click)
    alice.tab.evaluate("document.getElementById('approve').disabled = false")
    assert again(alice).startswith("already_approved")
    alice.tab.navigate(f"{console.origin}/p/{proposal_id}")
    assert not alice.tab.exists("#approve")
    assert "You approved this proposal." in alice.tab.text("main")

    login(bob, console)
    approve(bob, console, proposal_id)
    assert bob.tab.wait_for_text("#approvals", "2 of 2 approvals")
    proposal = console.proposal(proposal_id)
    assert proposal.state == "approved"
    assert sorted(a["principal"] for a in proposal.approvals) == ["alice", "bob"]
    signatures = console.signatures(proposal_id)
    for approval, signature in zip(proposal.approvals, signatures, strict=True):
        result = ssh_keygen_verify(signers, approval["principal"], shown.encode("utf-8"),
                                   signature, tmp_path)
        assert result.returncode == 0, result.stderr
        assert b"ECDSA-SK" in result.stdout
    # each credential signed with presence and verification, counted by the authenticator
    for operator in (alice, bob):
        assert operator.authenticator.credentials()[0]["signCount"] >= 2


def test_an_operator_whose_verification_fails_cannot_approve(console, tab):
    alice = enroll(tab, console, "alice")
    proposal_id = console.propose()
    login(alice, console)
    alice.authenticator.set_user_verified(False)
    status = approve(alice, console, proposal_id)
    assert status == "NotAllowedError"   # the browser gave the page no assertion at all
    assert console.proposal(proposal_id).approvals == []


def test_pages_need_a_session(console, tab):
    proposal_id = console.propose()
    for path in ("/", f"/p/{proposal_id}"):
        tab.navigate(console.origin + path)
        assert tab.evaluate("location.pathname") == "/login"


def test_an_operator_who_lost_a_key_is_revoked_and_enrolls_again(console, tab, open_tab):
    """docs/APPROVALS.md's recovery, in the browser: once revoked, the old session and the old
    passkey are refused; a new enrollment (a new device) gives a new key that approves."""
    alice = enroll(tab, console, "alice")
    proposal_id = console.propose()
    login(alice, console)
    deploy = console.cli("operators", "revoke", "alice")
    assert alice.key_line not in deploy
    tab.navigate(f"{console.origin}/p/{proposal_id}")
    assert tab.evaluate("location.pathname") == "/login"      # the old session is over
    tab.click("#login")
    refused = tab.wait_for("document.getElementById('status').textContent.trim()")
    assert refused.startswith("operator_revoked")                  # the old passkey too
    assert tab.evaluate("location.pathname") == "/login"

    again_alice = enroll(open_tab(), console, "alice")
    assert again_alice.key_line != alice.key_line
    assert again_alice.key_line in console.cli("operators", "list")
    login(again_alice, console)
    assert approve(again_alice, console, proposal_id) == "approved"


def test_another_site_cannot_act_for_a_logged_in_operator(console, tab):
    """A page of another site (http://127.0.0.1:PORT is not the same site as localhost)
    that alice visits while logged in: its form posting a rejection and its script posting
    an approval change nothing."""
    alice = enroll(tab, console, "alice")
    proposal_id = console.propose()
    login(alice, console)
    target = f"{console.origin}/p/{proposal_id}"
    page = (f'<form method="post" action="{target}/reject"><input name="reason" value="csrf">'
            f'<input name="csrf" value="guess"><button id="go">go</button></form>')

    async def attacker(request):
        return HTMLResponse(page)
    with AsgiServer(Starlette(routes=[Route("/", attacker)])) as site:
        other = site.url.replace("localhost", "127.0.0.1")
        tab.navigate(other)
        posted = tab.evaluate(
            f"fetch({json.dumps(target + '/approve')}, {{method: 'POST', credentials: 'include',"
            f" headers: {{'Content-Type': 'application/json'}}, body: '{{}}'}})"
            f".then((r) => 'answered ' + r.status, (e) => e.name)")
        assert posted == "TypeError"   # no answer for that script (CORS)
        loaded = tab.expect_load()
        tab.click("#go")
        loaded.wait()
        assert tab.evaluate("location.href") == f"{target}/reject"   # it reached the console
        assert json.loads(tab.evaluate("document.body.innerText"))["error"]   # refused
    proposal = console.proposal(proposal_id)
    assert (proposal.state, proposal.approvals) == ("pending", [])
    tab.navigate(target)   # alice's own session still works
    assert tab.exists("#approve")


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_proposal_renders_inert(console, tab, hostile):
    """Rationale, params and preview with markup, script and control characters: no script
    runs, no element is injected, nothing violates the CSP, the text is shown literally
    (control characters as visible escapes). The document block shows the document's exact
    text; one that holds a character that cannot be shown is not signed."""
    alice = enroll(tab, console, "alice")
    proposal_id = console.propose(
        rationale=hostile, params={"unit": hostile},
        preview={"available": True, "command": hostile, "exit_code": 0, "output": hostile,
                 "explains": hostile, "prediction": hostile})
    tab.add_init_script(WATCH)
    login(alice, console)
    for path in ("/", f"/p/{proposal_id}"):
        tab.navigate(console.origin + path)
        assert tab.evaluate("window.__pwned === undefined")
        assert tab.evaluate("window.__csp") == []
        assert tab.evaluate(INJECTED) == 0
        assert tab.evaluate(
            "[...document.scripts].every((s) => s.src.endsWith('/static/console.js'))")
        text = tab.evaluate("document.body.innerText")
        if tab.exists("#document"):
            text = text.replace(tab.evaluate("document.getElementById('document').innerText"),
                                "")
        assert all(c.isprintable() or c in "\n\t" for c in text), repr(text)
        if "<" in hostile:
            assert hostile.split(">")[0] in text
        assert tab.exceptions == []
        if "\x1b" in hostile:
            assert "\\x1b" in text and "\\u202e" in text
    shown = tab.text("#document")
    assert shown == console.proposal(proposal_id).document_text
    assert json.loads(shown)["steps"][0]["params"]["unit"] == hostile
    if not all(c.isprintable() for c in shown):   # not offered for signing
        assert not tab.exists("#approve")
        assert "not offered for signing" in tab.text("main")
