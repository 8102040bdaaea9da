"""A real browser for tests: Debian's headless Chromium driven over the DevTools protocol.

- `Browser` starts `/usr/bin/chromium --headless=new --remote-debugging-port=0` with its own
  profile directory, learns the port the OS gave it from its "DevTools listening" line (no
  fixed port), and speaks CDP over one websocket (`Connection`). Chromium runs in its own process
  group, which `close()` kills whatever happened, so no test leaves a browser behind.
- `Tab`: one page in its own browser context (its own cookies), with the helpers the tests
  use: navigate and wait for the load event, evaluate JS (promises awaited), click (real mouse
  events, so the page sees a user gesture), type, read text, wait for a DOM condition with a
  deadline, screenshot to a PNG file, and a virtual WebAuthn authenticator
  (`VirtualAuthenticator`: ctap2, internal transport, resident keys, user verification).
- `AsgiServer`: serves an ASGI app with uvicorn on a port the OS picks, on both loopback
  addresses of `localhost` (a secure context for WebAuthn without TLS).

Every wait is for an event (a CDP event, a DOM mutation, a line from Chromium) with a
deadline; nothing sleeps. The deadlines only bound a hang: they are never the assertion.
"""
from __future__ import annotations

import base64
import collections
import contextlib
import itertools
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Self

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

CHROMIUM = "/usr/bin/chromium"
START_SECONDS = 60.0     # Chromium's start, bounded
COMMAND_SECONDS = 60.0   # one CDP command or awaited event, bounded
_LISTENING = "DevTools listening on "
VIEWPORT = (1200, 800)   # CSS pixels of every tab (screenshots for the docs are this size)


def require_browser() -> None:
    """Skip where there is no Chromium (Ubuntu has no Debian package), fail under CI=true."""
    if os.access(CHROMIUM, os.X_OK):
        return
    reason = f"{CHROMIUM} is missing (scripts/setup.sh installs Debian's chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but no browser: {reason}", pytrace=False)
    pytest.skip(reason)


class BrowserError(Exception):
    """The browser refused, failed or did not answer within its deadline."""


class PageError(BrowserError):
    """JavaScript evaluated in the page threw (or its promise rejected)."""

    def __init__(self, text: str, details: dict):
        super().__init__(text)
        self.details = details


class _Waiter:
    """One expected event: registered before the action that causes it, then waited for."""

    def __init__(self, method: str, session: str | None, predicate):
        self.method, self.session, self.predicate = method, session, predicate
        self.future: Future = Future()

    def wait(self, timeout: float = COMMAND_SECONDS) -> dict:
        try:
            return self.future.result(timeout)
        except FutureTimeout:
            raise BrowserError(f"no {self.method} within {timeout} s") from None


class Connection:
    """One CDP websocket: commands matched to their answers by id; events handed to waiters
    and listeners from a reader thread. Flattened sessions: a tab's messages carry its
    sessionId."""

    def __init__(self, url: str):
        self._stack = contextlib.ExitStack()
        self._ws = self._stack.enter_context(connect(
            url, max_size=None, proxy=None, open_timeout=COMMAND_SECONDS, ping_interval=None,
            compression=None))
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, Future] = {}
        self._waiters: list[_Waiter] = []
        self._listeners: dict[str | None, list] = collections.defaultdict(list)
        self._closed: str | None = None
        self._reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self._reader.start()

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = COMMAND_SECONDS) -> dict:
        """Run one command and return its result; a CDP error raises BrowserError."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise BrowserError(f"{method}: connection closed ({self._closed})")
            ident = next(self._ids)
            self._pending[ident] = future
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        try:
            answer = future.result(timeout)
        except FutureTimeout:
            raise BrowserError(f"{method}: no answer within {timeout} s") from None
        finally:
            with self._lock:
                self._pending.pop(ident, None)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}"
                               f" {answer['error'].get('data', '')}".rstrip())
        return answer.get("result", {})

    def expect(self, method: str, session: str | None = None, predicate=None) -> _Waiter:
        """Register for the next `method` event (of `session`) matching `predicate`."""
        waiter = _Waiter(method, session, predicate or (lambda params: True))
        with self._lock:
            if self._closed:
                waiter.future.set_exception(BrowserError(f"connection closed ({self._closed})"))
            else:
                self._waiters.append(waiter)
        return waiter

    def listen(self, session: str | None, callback) -> None:
        """Call `callback(method, params)` for every event of `session` (reader thread)."""
        with self._lock:
            self._listeners[session].append(callback)

    def forget(self, session: str) -> None:
        with self._lock:
            self._listeners.pop(session, None)
            self._waiters = [w for w in self._waiters if w.session != session]

    def _read(self) -> None:
        reason = "closed by the browser"
        try:
            for raw in self._ws:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        future = self._pending.get(message["id"])
                    if future is not None and not future.done():
                        future.set_result(message)
                    continue
                self._dispatch(message.get("method", ""), message.get("params", {}),
                               message.get("sessionId"))
        except ConnectionClosed:
            pass
        except Exception as exc:  # noqa: BLE001 - reported to every waiting caller instead
            reason = f"reader failed: {exc!r}"
        with self._lock:
            self._closed = reason
            pending, waiters = list(self._pending.values()), self._waiters
            self._waiters = []
        for future in pending + [w.future for w in waiters]:
            if not future.done():
                future.set_exception(BrowserError(f"connection {reason}"))

    def _dispatch(self, method: str, params: dict, session: str | None) -> None:
        with self._lock:
            matched = [w for w in self._waiters
                       if w.method == method and w.session == session and w.predicate(params)]
            self._waiters = [w for w in self._waiters if w not in matched]
            listeners = list(self._listeners.get(session, ()))
        for waiter in matched:
            waiter.future.set_result(params)
        for callback in listeners:
            callback(method, params)

    def close(self) -> None:
        self._stack.close()
        self._reader.join(COMMAND_SECONDS)


# A promise that resolves once the expression (JS, evaluated in the page) is truthy: checked
# now and after every DOM mutation; rejected after the deadline with the expression's text.
_WAIT_JS = """(() => new Promise((resolve, reject) => {
  const test = () => { try { return (%s); } catch (e) { return false; } };
  const first = test();
  if (first) { resolve(first); return; }
  const observer = new MutationObserver(() => {
    const value = test();
    if (value) { observer.disconnect(); clearTimeout(timer); resolve(value); }
  });
  const timer = setTimeout(() => { observer.disconnect();
    reject(new Error("not true within %d ms: " + %s)); }, %d);
  observer.observe(document, {subtree: true, childList: true, attributes: true,
                              characterData: true});
}))()"""


class Tab:
    """One page in its own browser context. Console messages, uncaught exceptions and
    browser log entries (CSP violations among them) are collected in `console`, `exceptions`
    and `log`."""

    def __init__(self, browser: Browser, context: str, target: str, session: str):
        self.browser, self.context, self.target, self.session = browser, context, target, session
        self.console: list[str] = []
        self.exceptions: list[str] = []
        self.log: list[dict] = []
        browser.connection.listen(session, self._event)
        for domain in ("Page", "Runtime", "Log"):
            self.cmd(f"{domain}.enable")
        # a background tab is not focused, and WebAuthn refuses unfocused documents
        self.cmd("Emulation.setFocusEmulationEnabled", enabled=True)
        width, height = VIEWPORT
        self.cmd("Emulation.setDeviceMetricsOverride", width=width, height=height,
                 deviceScaleFactor=1, mobile=False)
        self.cmd("Emulation.setScrollbarsHidden", hidden=True)  # screenshots: the full width

    def _event(self, method: str, params: dict) -> None:
        if method == "Runtime.consoleAPICalled":
            self.console.append(" ".join(str(a.get("value", a.get("description", "")))
                                         for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.exceptions.append(details.get("exception", {}).get("description")
                                   or details.get("text", ""))
        elif method == "Log.entryAdded":
            self.log.append(params.get("entry", {}))

    def cmd(self, method: str, timeout: float = COMMAND_SECONDS, **params) -> dict:
        return self.browser.connection.send(method, params, self.session, timeout)

    def expect(self, method: str, predicate=None) -> _Waiter:
        return self.browser.connection.expect(method, self.session, predicate)

    def expect_load(self) -> _Waiter:
        """Register for the next load event, before the click or submit that navigates."""
        return self.expect("Page.loadEventFired")

    def navigate(self, url: str, timeout: float = COMMAND_SECONDS) -> None:
        """Go to `url` and return once its load event fired; a network error raises."""
        loaded = self.expect_load()
        result = self.cmd("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"navigate {url}: {result['errorText']}")
        loaded.wait(timeout)

    def add_init_script(self, source: str) -> None:
        """Run `source` in every document of this tab before the page's own scripts (the
        DevTools protocol's scripts are not subject to the page's CSP)."""
        self.cmd("Page.addScriptToEvaluateOnNewDocument", source=source)

    def evaluate(self, expression: str, timeout: float = COMMAND_SECONDS):
        """The JSON value of `expression` in the page, promises awaited; a throw raises
        PageError with the exception's description."""
        result = self.cmd("Runtime.evaluate", timeout=timeout, expression=expression,
                          awaitPromise=True, returnByValue=True, userGesture=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "")
            raise PageError(text, details)
        return result.get("result", {}).get("value")

    def wait_for(self, condition: str, timeout: float = COMMAND_SECONDS):
        """Wait until the JS expression `condition` (about the DOM) is truthy; return it."""
        millis = int(timeout * 1000)
        return self.evaluate(_WAIT_JS % (condition, millis, json.dumps(condition), millis),
                             timeout=timeout + COMMAND_SECONDS)

    def wait_for_selector(self, selector: str, timeout: float = COMMAND_SECONDS) -> None:
        self.wait_for(f"document.querySelector({json.dumps(selector)}) !== null", timeout)

    def wait_for_text(self, selector: str, needle: str,
                      timeout: float = COMMAND_SECONDS) -> str:
        """Wait until the element's text contains `needle`; return the whole text."""
        sel, text = json.dumps(selector), json.dumps(needle)
        return self.wait_for(f"(document.querySelector({sel})?.textContent ?? '').includes("
                             f"{text}) && document.querySelector({sel}).textContent", timeout)

    def text(self, selector: str) -> str:
        """The textContent of the element (raises if there is none)."""
        value = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                              f" if (!e) throw new Error('no element ' + {json.dumps(selector)});"
                              f" return e.textContent; }})()")
        return value

    def exists(self, selector: str) -> bool:
        return self.evaluate(f"document.querySelector({json.dumps(selector)}) !== null")

    def click(self, selector: str) -> None:
        """A real left click in the element's middle (scrolled into view first)."""
        box = self.evaluate(f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            if (!e) throw new Error('no element ' + {json.dumps(selector)});
            e.scrollIntoView({{block: 'center', inline: 'center'}});
            const r = e.getBoundingClientRect();
            return {{x: r.left + r.width / 2, y: r.top + r.height / 2}};
        }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            self.cmd("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"],
                     button="left", clickCount=1)

    def type_text(self, selector: str, text: str) -> None:
        """Focus the element and type `text` into it, as a keyboard's input method would."""
        self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                      f" if (!e) throw new Error('no element ' + {json.dumps(selector)});"
                      f" e.focus(); }})()")
        self.cmd("Input.insertText", text=text)

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """The page as a PNG file at `path` (the whole page unless `full_page` is false)."""
        result = self.cmd("Page.captureScreenshot", format="png",
                          captureBeyondViewport=full_page)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(result["data"]))
        return path

    def add_authenticator(self, **options) -> VirtualAuthenticator:
        """A virtual platform authenticator for this tab: ctap2, internal transport, resident
        keys, user verification supported and given, presence given automatically."""
        self.cmd("WebAuthn.enable", enableUI=False)
        settings = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                    "hasUserVerification": True, "isUserVerified": True,
                    "automaticPresenceSimulation": True}
        settings.update(options)
        result = self.cmd("WebAuthn.addVirtualAuthenticator", options=settings)
        return VirtualAuthenticator(self, result["authenticatorId"])

    def close(self) -> None:
        self.browser.close_tab(self)


class VirtualAuthenticator:
    """One virtual authenticator of a tab (DevTools protocol WebAuthn domain)."""

    def __init__(self, tab: Tab, authenticator_id: str):
        self.tab, self.id = tab, authenticator_id

    def credentials(self) -> list[dict]:
        """The credentials it holds (credentialId, rpId, signCount, isResidentCredential...)."""
        return self.tab.cmd("WebAuthn.getCredentials", authenticatorId=self.id)["credentials"]

    def set_user_verified(self, verified: bool) -> None:
        """Whether the next user verification succeeds (a wrong PIN / biometric when false)."""
        self.tab.cmd("WebAuthn.setUserVerified", authenticatorId=self.id,
                     isUserVerified=verified)

    def remove(self) -> None:
        self.tab.cmd("WebAuthn.removeVirtualAuthenticator", authenticatorId=self.id)


class Browser:
    """A headless Chromium of this test session; `close()` always leaves nothing running."""

    def __init__(self, executable: str = CHROMIUM):
        self.executable = executable
        self.profile = Path(tempfile.mkdtemp(prefix="mcp-chromium-"))
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._listening = threading.Event()
        self._url: str | None = None
        self.proc: subprocess.Popen | None = None
        self.connection: Connection | None = None
        self.tabs: list[Tab] = []
        self.start_seconds: float | None = None

    def start(self, timeout: float = START_SECONDS) -> Browser:
        """Start Chromium and connect; on any failure kill it and raise with its stderr."""
        started = time.monotonic()
        args = [self.executable, "--headless=new", "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}", "--no-first-run",
                "--no-default-browser-check", "--no-proxy-server", "--disable-sync",
                "--disable-background-networking", "--disable-component-update",
                "--disable-dev-shm-usage", "--password-store=basic", "about:blank"]
        if os.geteuid() == 0:  # Chromium's sandbox refuses to run as root
            args.insert(1, "--no-sandbox")
        try:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         start_new_session=True)
            threading.Thread(target=self._drain, name="chromium-stderr", daemon=True).start()
            if not self._listening.wait(timeout):
                raise BrowserError(f"chromium did not listen within {timeout} s")
            if not self._url:
                raise BrowserError(f"chromium exited ({self.proc.wait()}) without listening")
            self.connection = Connection(self._url)
        except BaseException as exc:
            self.close()
            if isinstance(exc, (BrowserError, OSError, ValueError)):
                raise BrowserError(f"{exc}; chromium said: "
                                   + " | ".join(self.stderr_tail)) from exc
            raise
        self.start_seconds = time.monotonic() - started
        return self

    def _drain(self) -> None:
        """Read Chromium's stderr (never let the pipe fill). Its line "DevTools listening on
        ws://127.0.0.1:PORT/devtools/browser/ID" is the event that it is ready and says the
        port the OS gave it. (The DevToolsActivePort file in the profile holds the same, but
        this Chromium writes it after that line: reading it then is a race.)"""
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.stderr_tail.append(line)
            if line.startswith(_LISTENING) and not self._listening.is_set():
                url = line[len(_LISTENING):]
                if url.startswith("ws://127.0.0.1:"):
                    self._url = url
                self._listening.set()
        self._listening.set()  # exited early: start() reports the tail

    def new_tab(self) -> Tab:
        """A blank page in a fresh browser context (cookies and storage of its own)."""
        context = self.connection.send("Target.createBrowserContext",
                                       {"disposeOnDetach": True})["browserContextId"]
        target = self.connection.send("Target.createTarget", {
            "url": "about:blank", "browserContextId": context})["targetId"]
        session = self.connection.send("Target.attachToTarget", {
            "targetId": target, "flatten": True})["sessionId"]
        tab = Tab(self, context, target, session)
        self.tabs.append(tab)
        return tab

    def close_tab(self, tab: Tab) -> None:
        if tab not in self.tabs:
            return
        self.tabs.remove(tab)
        try:
            self.connection.send("Target.closeTarget", {"targetId": tab.target})
            self.connection.send("Target.disposeBrowserContext",
                                 {"browserContextId": tab.context})
        finally:
            self.connection.forget(tab.session)

    def close(self) -> None:
        """Ask Chromium to quit, then kill its process group whatever happened."""
        try:
            if self.connection is not None:
                try:
                    self.connection.send("Browser.close", timeout=10)
                    self.proc.wait(timeout=10)
                except (BrowserError, subprocess.TimeoutExpired):
                    pass
                self.connection.close()
        finally:
            if self.proc is not None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)  # the group we started
                except ProcessLookupError:
                    pass
                self.proc.wait()
                _wait_group_exit(self.proc.pid)
                if self.proc.stderr:
                    self.proc.stderr.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def group_alive(pgid: int) -> list[int]:
    """The processes of group `pgid` that have not exited (a zombie, state Z, has)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def _wait_group_exit(pgid: int, timeout: float = COMMAND_SECONDS) -> None:
    """Wait until every process of the killed group has exited: Chromium's helpers are not
    our children, but a pidfd of each becomes readable when it exits."""
    deadline = time.monotonic() + timeout
    for pid in group_alive(pgid):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise BrowserError(f"chromium process {pid} did not exit within {timeout} s")
        finally:
            os.close(fd)


class AsgiServer:
    """An ASGI app served by uvicorn in a thread at http://localhost:PORT. The sockets are
    bound and listening before the thread starts, so a request made at once waits in the
    backlog instead of failing: nothing to wait for."""

    def __init__(self, app, lifespan: str = "auto"):
        import uvicorn
        self.sockets = _loopback_sockets()
        self.port = self.sockets[0].getsockname()[1]
        self.url = f"http://localhost:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
        self.thread = threading.Thread(target=self.server.run, args=(self.sockets,),
                                       name="asgi-server", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(COMMAND_SECONDS)
        for sock in self.sockets:
            sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _loopback_sockets() -> list[socket.socket]:
    """Listening sockets on one OS-chosen port on every address of `localhost` (127.0.0.1
    and ::1 when the host has it), so whichever the browser tries is ours."""
    addresses = []
    for family, _, _, _, address in socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM):
        if (family, address[0]) not in addresses:
            addresses.append((family, address[0]))
    for _ in range(100):
        sockets: list[socket.socket] = []
        try:
            for family, host in addresses:
                sock = socket.socket(family)
                sockets.append(sock)
                sock.bind((host, sockets[0].getsockname()[1] if len(sockets) > 1 else 0))
                sock.listen(64)
            return sockets
        except OSError:  # that port is taken on the other address: another port
            for sock in sockets:
                sock.close()
    raise BrowserError(f"no port free on all of {addresses}")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
