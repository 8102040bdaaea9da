"""A real console for tests: uvicorn on a socket the OS gave a free port, the project's own
store, registry and sessions in a temporary state directory, and httpx2 clients that act as
the console's page would (Origin header, cookie, CSRF token, a passkey of webauthn_support).
"""
from __future__ import annotations

import io
import re
import socket
import ssl
import threading
from pathlib import Path

import httpx2
import uvicorn
from webauthn_support import Passkey

from mcp_linux_infra.approvals.store import open_approvals
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.console.app import create_app
from mcp_linux_infra.console.sessions import Sessions
from mcp_linux_infra.console.webauthn import b64url_decode
from mcp_linux_infra.operators.registry import open_registry
from mcp_linux_infra.settings import Settings

CSRF_RE = re.compile(r'<meta name="csrf" content="([^"]+)">')


class ConsoleServer:
    """The console app served by a real uvicorn in a thread of the test process."""

    def __init__(self, state: Path, tls: tuple[Path, Path] | None = None, **settings):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)  # connections wait in the backlog until the loop accepts them
        self.port = self.sock.getsockname()[1]
        scheme = "https" if tls else "http"
        self.origin = f"{scheme}://localhost:{self.port}"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.audit_text = io.StringIO()
        self.settings = Settings(_env_file=None, state_dir=state, audit_log=state / "audit.jsonl",
                                 console_origin=self.origin, console_bind="127.0.0.1",
                                 console_tls_cert=tls[0] if tls else None,
                                 console_tls_key=tls[1] if tls else None, **settings)
        self.audit = Audit(self.settings.audit_log, self.audit_text)
        self.registry = open_registry(self.settings, self.audit)
        self.store = open_approvals(self.settings, self.audit, operators=self.registry)
        self.sessions = Sessions(state / "approvals.sqlite3")
        app = create_app(self.settings, self.store, self.registry, self.sessions, self.audit,
                         https=tls is not None, bind="127.0.0.1")
        config = uvicorn.Config(app, log_level="warning", access_log=False,
                                server_header=False, proxy_headers=False,
                                ssl_certfile=str(tls[0]) if tls else None,
                                ssl_keyfile=str(tls[1]) if tls else None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)
        self.thread.start()

    def client(self, verify: ssl.SSLContext | bool = True, **kwargs) -> Browser:
        return Browser(self, verify, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.sock.close()
        self.sessions.close()
        self.store.close()
        self.registry.close()


class Browser(httpx2.Client):
    """What the console's page sends: its origin, the session cookie, the CSRF token."""

    def __init__(self, console: ConsoleServer, verify=True, **kwargs):
        headers = {"Origin": console.origin, **kwargs.pop("headers", {})}
        super().__init__(base_url=console.url, headers=headers, follow_redirects=False,
                         verify=verify, timeout=60, **kwargs)
        self.console = console
        self.csrf: str | None = None

    def enroll(self, name: str, passkey: Passkey | None = None) -> tuple[Passkey, dict]:
        passkey = passkey or Passkey("localhost", self.console.origin)
        token = self.console.registry.new_enrollment(name, 600)
        assert self.get(f"/enroll/{token}").status_code == 200
        begin = self.post(f"/enroll/{token}/begin").json()["publicKey"]
        done = self.post(f"/enroll/{token}/finish",
                         json=passkey.register(b64url_decode(begin["challenge"])))
        assert done.status_code == 200, done.text
        return passkey, done.json()

    def login(self, passkey: Passkey, **kwargs) -> httpx2.Response:
        begin = self.post("/login/begin").json()["publicKey"]
        done = self.post("/login/finish",
                         json=passkey.assertion(b64url_decode(begin["challenge"]), **kwargs))
        listing = self.get("/") if done.status_code == 200 else None
        if listing is not None and listing.status_code == 200:  # the cookie comes back
            self.csrf = CSRF_RE.search(listing.text).group(1)
        return done

    def page(self, path: str) -> tuple[str, str | None]:
        """A page's HTML and the CSRF token it carries."""
        answer = self.get(path)
        assert answer.status_code == 200, (answer.status_code, answer.text)
        found = CSRF_RE.search(answer.text)
        return answer.text, found.group(1) if found else None
