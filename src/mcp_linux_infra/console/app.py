"""The console's routes (starlette) and `mcp-linux-infra console` (uvicorn).

Every POST must come from the console's own page (its Origin, or for a form the browser's
Sec-Fetch-Site), and a logged-in one must also carry the session's CSRF token; logins, enrollments and approvals are rate-limited per
client address. Approving: the page signs the SSHSIG blob of the document it shows; here the
assertion is checked against the operator's enrolled key and the stored document, repacked
into an SSHSIG and handed to the store, which checks it with ssh-keygen again. The target
decides anyway.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mcp_linux_infra import display
from mcp_linux_infra.approvals.store import ApprovalRefused, ApprovalStore, UnknownProposal
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.console import pages
from mcp_linux_infra.console.security import (
    RateLimiter,
    SecurityHeaders,
    check_bind,
    check_rp_id,
    client_of,
)
from mcp_linux_infra.console.sessions import Challenges, Session, Sessions
from mcp_linux_infra.console.webauthn import (
    ES256,
    Assertion,
    Registration,
    WebAuthnRefused,
    b64url,
    b64url_decode,
    signed_data,
)
from mcp_linux_infra.console_links import proposal_path
from mcp_linux_infra.operators.registry import Operator, Registry, RegistryRefused, ansible_yaml
from mcp_linux_infra.settings import Settings, parse_ttl

STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 * 1024
TIMEOUT_MS = 120000
LIST_LIMIT = 100
STATUS = re.compile(r"[a-z_]{1,40}\Z")
NEXT = re.compile(r"/p/[A-Za-z0-9_-]{1,64}\Z")  # where a login may lead: a proposal's page


class Refused(Exception):
    """An answer other than success: a status, a code, a sentence."""

    def __init__(self, status: int, code: str, text: str):
        super().__init__(text)
        self.status, self.code, self.text = status, code, text


@dataclass
class Console:
    settings: Settings
    store: ApprovalStore
    registry: Registry
    sessions: Sessions
    audit: Audit
    https: bool
    challenges: Challenges
    limiter: RateLimiter

    @property
    def origin(self) -> str:
        return self.settings.console_origin.rstrip("/")

    @property
    def rp_id(self) -> str:
        return self.settings.console_rp_id


def _cookie(https: bool) -> str:
    return "__Host-mcp-console" if https else "mcp-console"


def _error(refused: Refused) -> JSONResponse:
    return JSONResponse({"error": refused.code, "message": refused.text}, refused.status)


def _client(console: Console, request: Request):
    return client_of(request.client.host if request.client else None, request.headers,
                     console.https, frozenset(console.settings.console_trusted_proxies))


def _same_origin(console: Console, request: Request) -> None:
    """The request comes from the console's own page: its Origin, or, for a form the page
    posts (under Referrer-Policy no-referrer a browser sends `Origin: null` then), the
    browser's own `Sec-Fetch-Site: same-origin`, which no page can set."""
    origin = request.headers.get("origin")
    if origin == console.origin or (
            origin == "null" and request.headers.get("sec-fetch-site") == "same-origin"):
        return
    raise Refused(403, "bad_origin", "the request did not come from the console's page")


def _limit(console: Console, request: Request, group: str) -> None:
    if not console.limiter.allow(group, _client(console, request).address):
        console.audit.warning("console_rate_limited", group=group,
                              client=_client(console, request).address)
        raise Refused(429, "rate_limited", "too many attempts; wait a minute")


async def _body(request: Request) -> bytes:
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise Refused(413, "too_large", "the request body is too large")
    return data


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form within MAX_BODY (the console's forms: csrf, reason)."""
    try:
        pairs = parse_qsl((await _body(request)).decode("utf-8"), max_num_fields=8)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "bad_request", "the body is not a form") from None
    return dict(pairs)


async def _json(request: Request) -> dict:
    try:
        body = json.loads(await _body(request))
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "bad_request", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "bad_request", "the body is not a JSON object")
    return body


def _session(console: Console, request: Request) -> tuple[Session, Operator] | None:
    """The request's login, if any, and its operator while that operator is not revoked."""
    https = _client(console, request).https
    session = console.sessions.get(request.cookies.get(_cookie(https)))
    if session is None:
        return None
    try:
        operator = console.registry.get(session.operator)
    except RegistryRefused:
        return None
    return None if operator.revoked_at is not None else (session, operator)


def _login_required(console: Console, request: Request) -> tuple[Session, Operator]:
    found = _session(console, request)
    if found is None:
        raise Refused(401, "login_required", "log in first")
    return found


def _challenge_of(client_data_json: bytes) -> bytes:
    try:
        client = json.loads(client_data_json)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "bad_client_data", "clientDataJSON is not JSON") from None
    challenge = client.get("challenge") if isinstance(client, dict) else None
    try:
        return b64url_decode(challenge, "challenge")
    except WebAuthnRefused as exc:
        raise Refused(400, exc.code, exc.text) from None


def create_app(settings: Settings, store: ApprovalStore, registry: Registry,
               sessions: Sessions, audit: Audit, https: bool, bind: str) -> SecurityHeaders:
    """The console; requests must name it in Host: the origin's host, or `bind`."""
    console = Console(settings, store, registry, sessions, audit, https, Challenges(),
                      RateLimiter())

    def handler(fn):
        async def wrapped(request: Request) -> Response:
            try:
                return await fn(console, request)
            except Refused as refused:
                return _error(refused)
            except (WebAuthnRefused, RegistryRefused) as exc:
                return _error(Refused(400, exc.code, exc.text))
        return wrapped

    hosts = {urlsplit(settings.console_origin).hostname, bind}
    app = Starlette(
        routes=[
            Route("/", handler(list_page)),
            Route("/login", handler(login_page)),
            Route("/login/begin", handler(login_begin), methods=["POST"]),
            Route("/login/finish", handler(login_finish), methods=["POST"]),
            Route("/logout", handler(logout), methods=["POST"]),
            Route("/enroll/{token}", handler(enroll_page)),
            Route("/enroll/{token}/begin", handler(enroll_begin), methods=["POST"]),
            Route("/enroll/{token}/finish", handler(enroll_finish), methods=["POST"]),
            Route("/p/{id}", handler(detail_page)),
            Route("/p/{id}/approve", handler(approve), methods=["POST"]),
            Route("/p/{id}/reject", handler(reject), methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(TrustedHostMiddleware,
                               allowed_hosts=sorted(h for h in hosts if h))])
    return SecurityHeaders(app)  # outermost: on every answer, a server error's included


# -- pages ------------------------------------------------------------------------------------
async def list_page(console: Console, request: Request) -> Response:
    found = _session(console, request)
    if found is None:
        return RedirectResponse("/login", 303)
    session, operator = found
    console.store.expire_due()
    active = [p for state in pages.ACTIVE for p in console.store.find(state, limit=LIST_LIMIT)]
    shown = {p.id for p in active}
    recent = [p for p in console.store.find(limit=LIST_LIMIT) if p.id not in shown]
    rows = sorted(active, key=lambda p: -p.created_at) + recent
    return HTMLResponse(pages.proposal_list(rows, operator.name, session.csrf, time.time()))


async def login_page(console: Console, request: Request) -> Response:
    target = request.query_params.get("next", "/")
    return HTMLResponse(pages.login(target if NEXT.match(target) else "/"))


async def detail_page(console: Console, request: Request) -> Response:
    found = _session(console, request)
    if found is None:  # back here after the login (a link from a notification)
        return RedirectResponse(f"/login?next={quote(request.url.path, safe='/')}", 303)
    session, operator = found
    proposal_id = request.path_params["id"]
    console.store.expire_due()
    problem = None
    try:
        p = console.store.get(proposal_id)
        if p.state == "pending":  # every approver is shown (and signs) the same document
            p = console.store.prepare_document(proposal_id, parse_ttl(
                console.settings.approval_ttl))
    except UnknownProposal:
        return HTMLResponse(pages.message("Not found", "unknown_proposal",
                                          f"no proposal {proposal_id}"), 404)
    except ApprovalRefused:  # it stopped being pending meanwhile
        p = console.store.get(proposal_id)
    except ValueError as exc:  # no document the target would take can be made of it
        problem = str(exc)
    status = request.query_params.get("status", "")  # a code of ours, or nothing
    return HTMLResponse(pages.proposal_detail(
        p, console.store.history(p.id), operator, session.csrf, console.rp_id,
        status if STATUS.match(status) else "", time.time(), problem))


async def enroll_page(console: Console, request: Request) -> Response:
    token = request.path_params["token"]
    try:
        name = console.registry.peek_enrollment(token)
    except RegistryRefused as exc:
        return HTMLResponse(pages.message("Enrollment", exc.code, exc.text), 404)
    return HTMLResponse(pages.enroll(name, token))


# -- login ------------------------------------------------------------------------------------
async def login_begin(console: Console, request: Request) -> Response:
    _same_origin(console, request)
    _limit(console, request, "login")
    challenge = console.challenges.issue("login")
    return JSONResponse({"publicKey": {
        "challenge": b64url(challenge), "rpId": console.rp_id, "userVerification": "required",
        "allowCredentials": [], "timeout": TIMEOUT_MS}})


async def login_finish(console: Console, request: Request) -> Response:
    _same_origin(console, request)
    _limit(console, request, "login")
    assertion = Assertion.from_json(await _json(request))
    challenge = _challenge_of(assertion.client_data_json)
    if not console.challenges.take(challenge, "login"):
        raise Refused(400, "wrong_challenge", "not a challenge of this console (or used, or "
                      "expired): start again")
    try:
        operator = console.registry.by_credential(b64url(assertion.credential_id))
    except RegistryRefused:
        raise Refused(403, "unknown_credential", "this passkey is not enrolled") from None
    if operator.revoked_at is not None:
        raise Refused(403, "operator_revoked", "this operator was revoked")
    try:
        assertion.check(operator.public_key, console.rp_id, console.origin, challenge)
    except WebAuthnRefused as exc:
        console.audit.warning("console_login_refused", operator=operator.name, reason=exc.code)
        raise Refused(403, exc.code, exc.text) from None
    session_id, _ = console.sessions.create(operator.name,
                                                  console.settings.console_session_seconds)
    console.audit.info("console_login", operator=operator.name,
                       client=_client(console, request).address)
    response = JSONResponse({"operator": operator.name})
    https = _client(console, request).https
    response.set_cookie(_cookie(https), session_id,
                        max_age=console.settings.console_session_seconds, path="/",
                        secure=https, httponly=True, samesite="strict")
    return response


async def logout(console: Console, request: Request) -> Response:
    _same_origin(console, request)
    session, _operator = _login_required(console, request)
    form = await _form(request)
    if not session.csrf_ok(form.get("csrf")):
        raise Refused(403, "bad_csrf", "the form's token does not match the session")
    https = _client(console, request).https
    console.sessions.delete(request.cookies[_cookie(https)])
    response = RedirectResponse("/login", 303)
    response.delete_cookie(_cookie(https), path="/", secure=https, httponly=True,
                           samesite="strict")
    return response


# -- enrollment -------------------------------------------------------------------------------
async def enroll_begin(console: Console, request: Request) -> Response:
    _same_origin(console, request)
    _limit(console, request, "enroll")
    token = request.path_params["token"]
    name = console.registry.peek_enrollment(token)
    challenge = console.challenges.issue("enroll", token)
    return JSONResponse({"publicKey": {
        "challenge": b64url(challenge),
        "rp": {"id": console.rp_id, "name": f"mcp-linux-infra approvals ({console.rp_id})"},
        "user": {"id": b64url(secrets.token_bytes(16)), "name": name, "displayName": name},
        "pubKeyCredParams": [{"type": "public-key", "alg": ES256}],
        "authenticatorSelection": {"userVerification": "required",
                                   "residentKey": "required", "requireResidentKey": True},
        "attestation": "none", "timeout": TIMEOUT_MS}})


async def enroll_finish(console: Console, request: Request) -> Response:
    _same_origin(console, request)
    _limit(console, request, "enroll")
    token = request.path_params["token"]
    registration = Registration.from_json(await _json(request))
    challenge = _challenge_of(registration.client_data_json)
    if not console.challenges.take(challenge, "enroll", token):
        raise Refused(400, "wrong_challenge", "not this enrollment's challenge (or used, or "
                      "expired): start again")
    line = registration.check(console.rp_id, console.origin, challenge)
    _, operator = console.registry.complete_enrollment(
        token, line, credential_id=b64url(registration.credential_id), rp_id=console.rp_id)
    return JSONResponse({"principal": operator.name, "key_line": operator.public_key,
                         "ansible": ansible_yaml([operator])})


# -- decisions --------------------------------------------------------------------------------
async def approve(console: Console, request: Request) -> Response:
    _same_origin(console, request)
    session, operator = _login_required(console, request)
    if not session.csrf_ok(request.headers.get("x-csrf-token")):
        raise Refused(403, "bad_csrf", "the request's token does not match the session")
    _limit(console, request, "approve")
    assertion = Assertion.from_json(await _json(request))
    if operator.credential_id is None or b64url(assertion.credential_id) != \
            operator.credential_id:
        raise Refused(403, "wrong_credential", "sign with the passkey you enrolled")
    proposal_id = request.path_params["id"]
    try:
        p = console.store.get(proposal_id)
    except UnknownProposal:
        raise Refused(404, "unknown_proposal", f"no proposal {proposal_id}") from None
    if p.document_text is None:
        raise Refused(409, "not_pending", "this proposal has no document to sign")
    try:
        assertion.check(operator.public_key, console.rp_id, console.origin,
                        signed_data(p.document_text.encode("utf-8")))
    except WebAuthnRefused as exc:
        code = "document_changed" if exc.code == "wrong_challenge" else exc.code
        console.audit.warning("console_approval_refused", proposal=proposal_id,
                              operator=operator.name, reason=code)
        raise Refused(409 if code == "document_changed" else 403, code,
                      "the signed document is not this proposal's document; reload the "
                      "page" if code == "document_changed" else exc.text) from None
    signature = assertion.sshsig(operator.public_key, console.origin)
    try:
        p = await run_in_threadpool(  # ssh-keygen checks it: not on the event loop
            console.store.add_approval, proposal_id, operator.name, signature, "webauthn",
            document=p.document_text)
    except ApprovalRefused as exc:
        raise Refused(409, exc.code, exc.text) from None
    console.audit.info("console_approval", proposal=proposal_id, operator=operator.name,
                       count=p.count())
    return JSONResponse({"state": p.state, "approvals": len(p.approvals),
                         "required": p.required})


async def reject(console: Console, request: Request) -> Response:
    _same_origin(console, request)
    session, operator = _login_required(console, request)
    form = await _form(request)
    if not session.csrf_ok(form.get("csrf")):
        raise Refused(403, "bad_csrf", "the form's token does not match the session")
    proposal_id = request.path_params["id"]
    reason = str(form.get("reason") or "").strip()
    problem = display.free_text_refusal("reason", reason) if reason else "reason: empty"
    if problem or len(reason) > 500:
        status = "bad_reason"
    else:
        try:
            console.store.reject(proposal_id, operator.name, reason)
            status = "rejected"
        except ApprovalRefused as exc:
            status = exc.code
        except UnknownProposal:
            raise Refused(404, "unknown_proposal", f"no proposal {proposal_id}") from None
    return RedirectResponse(f"{proposal_path(proposal_id)}?status={quote(status)}", 303)


# -- serving ----------------------------------------------------------------------------------
def serve(settings: Settings, bind: str, port: int) -> int:
    """Serve the console until interrupted (uvicorn); refuses a plaintext non-loopback bind."""
    import uvicorn

    from mcp_linux_infra.approvals.store import open_approvals
    from mcp_linux_infra.operators.registry import open_registry

    check_bind(settings, bind)
    check_rp_id(settings)
    audit = Audit(settings.audit_log)
    registry = open_registry(settings, audit)
    store = open_approvals(settings, audit, operators=registry)
    sessions = Sessions(settings.state_dir / "approvals.sqlite3")
    https = settings.console_tls_cert is not None
    app = create_app(settings, store, registry, sessions, audit, https, bind)
    config = uvicorn.Config(
        app, host=bind, port=port, proxy_headers=False, server_header=False,
        log_level="warning", access_log=False,
        ssl_certfile=str(settings.console_tls_cert) if https else None,
        ssl_keyfile=str(settings.console_tls_key) if https else None)
    audit.info("console_started", bind=bind, port=port, https=https,
               origin=settings.console_origin)
    scheme = "https" if https else "http"
    display.console(stderr=True).print(display.line(
        "console on ", f"{scheme}://{bind}:{port}", " for ", settings.console_origin,
        " (RP ID ", settings.console_rp_id, "); Ctrl-C stops it"))
    try:
        uvicorn.Server(config).run()
    finally:
        sessions.close()
        store.close()
        registry.close()
    return 0
