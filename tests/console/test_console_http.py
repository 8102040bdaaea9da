"""The console over real HTTP: headers on every answer, sessions, CSRF and origin checks,
enrollment links used once, passkey login, rate limits, Host check."""

import pytest
from webauthn_support import UP, Passkey

from mcp_linux_infra.console.security import CSP
from mcp_linux_infra.console.webauthn import b64url_decode

PATHS = ["/", "/login", "/static/console.js", "/static/console.css", "/nothing-here",
         "/enroll/unknown-token", "/p/p00000000"]


def test_every_answer_has_the_security_headers(console):
    with console.client() as browser:
        answers = [browser.get(path) for path in PATHS]
        answers.append(browser.post("/login/begin"))
        answers.append(browser.post("/p/p00000000/approve", json={}))
        answers.append(browser.get("/", headers={"Host": "evil.example"}))
    for answer in answers:
        assert answer.headers["content-security-policy"] == CSP, answer.request.url
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["cache-control"] == "no-store"
        assert "server" not in answer.headers
    assert answers[-1].status_code == 400  # Host is not the console's


def test_pages_carry_no_inline_script_or_style(console):
    with console.client() as browser:
        passkey, _ = browser.enroll("alice")
        assert browser.login(passkey).status_code == 200
        for path in ("/login", "/"):
            text = browser.get(path).text
            assert '<script src="/static/console.js" defer></script>' in text
            assert text.count("<script") == 1 and "style=" not in text and "<style" not in text
            assert " on" not in text.replace("<button", "")  # no onclick= and friends


def test_without_a_session_pages_send_to_login_and_posts_are_refused(console):
    with console.client() as browser:
        for path, login in (("/", "/login"), ("/p/p00000000", "/login?next=/p/p00000000")):
            answer = browser.get(path)
            assert (answer.status_code, answer.headers["location"]) == (303, login)
        assert 'data-next="/p/p00000000"' in browser.get("/login?next=/p/p00000000").text
        for elsewhere in ("//evil.example", "https://evil.example/p/x", "/p/x/../../y", "/"):
            page = browser.get("/login", params={"next": elsewhere}).text
            assert 'data-next="/"' in page
        answer = browser.post("/p/p00000000/approve", json={}, headers={"X-CSRF-Token": "x"})
        assert (answer.status_code, answer.json()["error"]) == (401, "login_required")
        answer = browser.post("/p/p00000000/reject", data={"reason": "no", "csrf": "x"})
        assert answer.status_code == 401
        assert browser.post("/logout", data={"csrf": "x"}).status_code == 401


def test_posts_need_the_consoles_origin_and_the_sessions_csrf_token(console):
    with console.client() as browser:
        passkey, _ = browser.enroll("alice")
        browser.login(passkey)
        assert browser.csrf
        for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
                        {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"}):
            answer = browser.post("/logout", data={"csrf": browser.csrf}, headers=headers)
            assert (answer.status_code, answer.json()["error"]) == (403, "bad_origin")
        del browser.headers["Origin"]
        assert browser.post("/login/begin").json()["error"] == "bad_origin"
        browser.headers["Origin"] = console.origin
        for token in (None, "", browser.csrf[:-1] + "A" if browser.csrf[-1] != "A" else "B"):
            data = {} if token is None else {"csrf": token}
            answer = browser.post("/p/p00000000/reject", data={**data, "reason": "no"})
            assert (answer.status_code, answer.json()["error"]) == (403, "bad_csrf")
            answer = browser.post("/p/p00000000/approve", json={},
                                  headers={} if token is None else {"X-CSRF-Token": token})
            assert (answer.status_code, answer.json()["error"]) == (403, "bad_csrf")
        # a browser's own form post under no-referrer: Origin null, Sec-Fetch-Site same-origin
        answer = browser.post("/logout", data={"csrf": browser.csrf},
                              headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})
        assert (answer.status_code, answer.headers["location"]) == (303, "/login")
        assert browser.get("/").status_code == 303  # the session is gone


def test_an_enrollment_link_works_once(console):
    with console.client() as browser:
        passkey = Passkey("localhost", console.origin)
        token = console.registry.new_enrollment("alice", 600)
        page = browser.get(f"/enroll/{token}")
        assert page.status_code == 200 and 'id="enroll"' in page.text
        begin = browser.post(f"/enroll/{token}/begin").json()["publicKey"]
        assert begin["rp"]["id"] == "localhost"
        assert begin["pubKeyCredParams"] == [{"type": "public-key", "alg": -7}]
        assert begin["authenticatorSelection"]["userVerification"] == "required"
        assert begin["user"]["name"] == "alice"
        challenge = b64url_decode(begin["challenge"])
        done = browser.post(f"/enroll/{token}/finish", json=passkey.register(challenge))
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["principal"] == "alice" and body["key_line"] == passkey.public_line()
        assert f'public_key: "{passkey.public_line()}"' in body["ansible"]
        again = browser.post(f"/enroll/{token}/finish", json=passkey.register(challenge))
        assert again.json()["error"] in ("wrong_challenge", "enrollment_used")
        assert browser.post(f"/enroll/{token}/begin").json()["error"] == "enrollment_used"
        assert browser.get(f"/enroll/{token}").status_code == 404
        operator = console.registry.get("alice")
        assert operator.credential_id and operator.rp_id == "localhost"


def test_an_enrollment_refuses_a_substituted_challenge_and_keeps_the_link(console):
    with console.client() as browser:
        passkey = Passkey("localhost", console.origin)
        token = console.registry.new_enrollment("alice", 600)
        browser.post(f"/enroll/{token}/begin")
        answer = browser.post(f"/enroll/{token}/finish", json=passkey.register(b"x" * 32))
        assert answer.json()["error"] == "wrong_challenge"
        other = console.registry.new_enrollment("bob", 600)
        begin = browser.post(f"/enroll/{other}/begin").json()["publicKey"]
        stolen = passkey.register(b64url_decode(begin["challenge"]))
        assert browser.post(f"/enroll/{token}/finish", json=stolen).json()["error"] == \
            "wrong_challenge"
        assert console.registry.peek_enrollment(token) == "alice"


def test_login_with_the_enrolled_passkey_and_not_otherwise(console):
    with console.client() as browser:
        passkey, _ = browser.enroll("alice")
        assert browser.login(passkey, flags=UP).json()["error"] == "user_verification_missing"
        assert browser.login(Passkey("localhost", console.origin)).json()["error"] == \
            "unknown_credential"
        assert browser.login(passkey, origin="https://evil.example").json()["error"] == \
            "wrong_origin"
        done = browser.login(passkey)
        assert done.json() == {"operator": "alice"}
        cookie = done.headers["set-cookie"]
        assert cookie.startswith("mcp-console=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert browser.get("/").status_code == 200
        console.registry.revoke("alice")
        assert browser.get("/").status_code == 303  # a revoked operator's session ends


def test_a_login_challenge_works_once(console):
    with console.client() as browser:
        passkey, _ = browser.enroll("alice")
        begin = browser.post("/login/begin").json()["publicKey"]
        assert begin["userVerification"] == "required" and begin["rpId"] == "localhost"
        body = passkey.assertion(b64url_decode(begin["challenge"]))
        assert browser.post("/login/finish", json=body).status_code == 200
        assert browser.post("/login/finish", json=body).json()["error"] == "wrong_challenge"


def test_logins_are_rate_limited(console):
    with console.client() as browser:
        codes = [browser.post("/login/begin").status_code for _ in range(12)]
    assert codes[:10] == [200] * 10 and codes[10:] == [429, 429]


@pytest.mark.parametrize("body", ["[]", "{", '{"id": 1}', "x" * 70000])
def test_bad_bodies_are_refused_with_a_code(console, body):
    with console.client() as browser:
        answer = browser.post("/login/finish", content=body,
                              headers={"Content-Type": "application/json"})
    assert 400 <= answer.status_code < 500
    assert set(answer.json()) == {"error", "message"}
