"""The pool: one authenticated Transport per (host, tier); on it, read-only requests go
through kept `mcp:session` channels (ssh/session.py) and everything else on a channel of
its own.

Reuse is what makes calls cheap: a fresh connection costs ~150 ms, a new channel costs the
target a wrapper start (~35 ms of CPU), a request in a kept session ~2 ms. A transport found
dead, or failing before the request was sent, is replaced once, transparently; so is a
session that ended (idle, limits). A transport whose key file has changed since it
authenticated is replaced too, so a rotated (and revoked) key stops being used at once;
the old transport, and its sessions, are closed when its last in-flight request ends.
"""

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, TypeVar

import paramiko

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.settings import Settings
from mcp_linux_infra.ssh.channel import Completed, Deadline, collect, start
from mcp_linux_infra.ssh.connect import connect, fetch_host_key
from mcp_linux_infra.ssh.errors import AuthFailed, RequestTimeout, SSHError, Unreachable
from mcp_linux_infra.ssh.hostkeys import KnownHosts
from mcp_linux_infra.ssh.keyfile import KeyFile, KeyUnusable
from mcp_linux_infra.ssh.route import Route, Routes
from mcp_linux_infra.ssh.session import (
    HELLO_BACKOFF_S,
    NoSessions,
    Session,
    SessionEnded,
    UseChannel,
)

Tier = Literal["reader", "pra"]
T = TypeVar("T")
R = TypeVar("R")
_NOT_STARTED = (paramiko.SSHException, EOFError, OSError)


class _Slot:
    """The current transport of one (host, tier) and the transports still in use."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.transport: paramiko.Transport | None = None
        self.key_signature: tuple | None = None
        self.in_use: dict[paramiko.Transport, int] = {}
        self.idle_sessions: list[Session] = []
        self.sessions = 0  # open sessions, idle or busy

    def retire(self, transport: paramiko.Transport) -> None:
        """Close `transport` now if idle, else when its last request ends (lock held)."""
        if not self.in_use.get(transport):
            self.in_use.pop(transport, None)
            transport.close()


class Pool:
    def __init__(self, settings: Settings, known_hosts: KnownHosts | None = None):
        self.settings = settings
        self.known_hosts = known_hosts or KnownHosts(
            settings.known_hosts, accept_new=settings.host_key_policy == "accept-new")
        self._tiers: dict[str, tuple[str, KeyFile]] = {
            "reader": (settings.reader_user, KeyFile(
                settings.reader_key, settings.reader_key_passphrase_file, "LINUX_MCP_READER_KEY")),
            "pra": (settings.pra_user, KeyFile(
                settings.pra_key, settings.pra_key_passphrase_file, "LINUX_MCP_PRA_KEY")),
        }
        self.routes = Routes(settings.ssh_config)
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._slots_lock = threading.Lock()
        self._fanout = ThreadPoolExecutor(max_workers=settings.fanout_concurrency,
                                          thread_name_prefix="ssh-fanout")
        self._sessionless: dict[str, float] = {}  # host -> until when it gets channels only
        # host -> how its last connection ended: None if it worked, else the SSHError's kind
        self._results: dict[str, str | None] = {}

    def connection_results(self) -> dict[str, str | None]:
        """Each host's last connection result (for the metrics; no probe of its own)."""
        return dict(self._results)

    def _note(self, host: Host, error: SSHError | None) -> None:
        self._results[host.name] = None if error is None else error.kind

    def _slot(self, host: Host, tier: str) -> _Slot:
        with self._slots_lock:
            return self._slots.setdefault((host.name, tier), _Slot())

    def _load_key(self, host: Host, tier: str) -> tuple[paramiko.PKey, tuple]:
        try:
            return self._tiers[tier][1].load()
        except KeyUnusable as exc:
            raise exc.for_host(host.name) from None

    def route(self, host: Host, tier: str = "reader") -> Route:
        """How `host` is reached (RouteInvalid if its ProxyJump/ProxyCommand cannot be)."""
        return self.routes.resolve(host, self._tiers[tier][0])

    def presented_key(self, host: Host, route: Route | None = None
                      ) -> tuple[Route, paramiko.PKey]:
        """The key the host (or `route`'s target, for one of its jump hosts) presents, not
        checked; the jump hosts before it are, and are logged into with the read tier's
        key."""
        route = route or self.route(host)
        key, _ = self._load_key(host, "reader") if route.jumps else (None, None)
        return route, fetch_host_key(route, self.settings.connect_timeout, self.known_hosts,
                                     key, self._tiers["reader"][1].label)

    def _connect(self, host: Host, tier: str) -> tuple[paramiko.Transport, tuple]:
        user, keyfile = self._tiers[tier]
        s = self.settings
        route = self.route(host, tier)
        key, sig = self._load_key(host, tier)
        try:
            return connect(route, user, key, keyfile.label, self.known_hosts,
                           s.connect_timeout, s.keepalive_interval), sig
        except AuthFailed:
            if not keyfile.changed_since(sig):
                raise
        key, sig = self._load_key(host, tier)  # rotated while we connected: once more
        return connect(route, user, key, keyfile.label, self.known_hosts,
                       s.connect_timeout, s.keepalive_interval), sig

    def _acquire(self, host: Host, tier: str,
                 stale: paramiko.Transport | None = None) -> tuple[paramiko.Transport, bool]:
        """A live transport, marked in use; True if it was just connected."""
        slot = self._slot(host, tier)
        keyfile = self._tiers[tier][1]
        with slot.lock:
            current = slot.transport
            fresh = (current is None or current is stale or not current.is_active()
                     or keyfile.changed_since(slot.key_signature))
            if fresh:
                if current is not None:
                    slot.transport = None
                    slot.retire(current)
                try:
                    slot.transport, slot.key_signature = self._connect(host, tier)
                except SSHError as exc:
                    self._note(host, exc)
                    raise
                self._note(host, None)
            slot.in_use[slot.transport] = slot.in_use.get(slot.transport, 0) + 1
            return slot.transport, fresh

    def _release(self, host: Host, tier: str, transport: paramiko.Transport) -> None:
        slot = self._slot(host, tier)
        with slot.lock:
            slot.in_use[transport] -= 1
            if transport is not slot.transport:
                slot.retire(transport)

    def _open(self, transport: paramiko.Transport, command: str, stdin: bytes | None,
              timeout: float) -> paramiko.Channel:
        channel = transport.open_session(timeout=timeout)
        try:
            start(channel, command, stdin, timeout)
        except BaseException:
            channel.close()
            raise
        return channel

    def run(self, host: Host, command: str, *, tier: Tier = "reader",
            stdin: bytes | None = None, timeout: float | None = None) -> Completed:
        """Send one request; raise an SSHError subclass for anything but an answer."""
        timeout = timeout or self.settings.command_timeout
        deadline = time.monotonic() + timeout
        if (tier == "reader" and self.settings.reader_sessions
                and self._sessionless.get(host.name, 0) < time.monotonic()):
            try:
                return self._run_in_session(host, command, stdin, timeout, deadline)
            except UseChannel:
                pass
        return self._run_on_channel(host, command, tier, stdin, timeout, deadline)

    def _take_session(self, host: Host, slot: _Slot, transport: paramiko.Transport) -> Session:
        """An idle usable session on `transport`, or a new one while under the per-host
        limit; UseChannel when all are busy or the target offers none."""
        with slot.lock:
            while slot.idle_sessions:
                session = slot.idle_sessions.pop()
                if session.transport is transport and session.usable():
                    return session
                slot.sessions -= 1
                session.close()
            if slot.sessions >= self.settings.reader_sessions:
                raise UseChannel("every session of this host is busy")
            slot.sessions += 1
        try:
            return Session.open(transport, min(self.settings.connect_timeout,
                                               self.settings.command_timeout),
                                self.settings.output_cap_bytes)
        except BaseException as exc:
            with slot.lock:
                slot.sessions -= 1
            if isinstance(exc, NoSessions):
                self._sessionless[host.name] = exc.until
            elif isinstance(exc, _NOT_STARTED) and transport.is_active():
                # the channel itself failed on a live connection (a forced command that
                # answered and closed before the exec reply): channels for a while
                self._sessionless[host.name] = time.monotonic() + HELLO_BACKOFF_S
            if isinstance(exc, (NoSessions, *_NOT_STARTED)):
                raise UseChannel(str(exc)) from None
            raise

    def _end_session(self, slot: _Slot, session: Session, keep: bool) -> None:
        with slot.lock:
            if keep and session.transport is slot.transport and session.usable():
                slot.idle_sessions.append(session)
                return
            slot.sessions -= 1
        session.close()

    def _run_in_session(self, host: Host, command: str, stdin: bytes | None, timeout: float,
                        deadline: float) -> Completed:
        slot = self._slot(host, "reader")
        transport, _ = self._acquire(host, "reader")
        try:
            for _ in range(2):  # a session that just ended (idle, limits): once more
                session = self._take_session(host, slot, transport)
                try:
                    done = session.request(command, stdin, deadline)
                except SessionEnded:
                    self._end_session(slot, session, keep=False)
                    continue
                except Deadline:
                    self._end_session(slot, session, keep=False)
                    raise self._timeout(host, timeout) from None
                except BaseException:
                    self._end_session(slot, session, keep=False)
                    raise
                self._end_session(slot, session, keep=True)
                return done
            raise UseChannel("sessions end before answering")
        finally:
            self._release(host, "reader", transport)

    @staticmethod
    def _timeout(host: Host, timeout: float) -> RequestTimeout:
        return RequestTimeout(
            host.name, f"no complete answer within {timeout:g} s",
            hint="the target normally stops a command at its own timeout first; "
                 "the host may be overloaded or the network slow")

    def _run_on_channel(self, host: Host, command: str, tier: str, stdin: bytes | None,
                        timeout: float, deadline: float) -> Completed:
        step = min(self.settings.connect_timeout, timeout)
        transport, fresh = self._acquire(host, tier)
        try:
            channel = self._open(transport, command, stdin, step)
        except _NOT_STARTED as exc:
            self._release(host, tier, transport)
            if fresh:
                raise self._lost(host, Unreachable(
                    host.name, f"cannot start a request: {exc}")) from None
            transport, _ = self._acquire(host, tier, stale=transport)
            try:
                channel = self._open(transport, command, stdin, step)
            except BaseException as exc2:
                self._release(host, tier, transport)
                if isinstance(exc2, _NOT_STARTED):
                    raise self._lost(host, Unreachable(
                        host.name, f"cannot start a request: {exc2}")) from None
                raise
        except BaseException:
            self._release(host, tier, transport)
            raise
        try:
            done = collect(channel, deadline, self.settings.output_cap_bytes)
        except Deadline:
            raise self._timeout(host, timeout) from None
        finally:
            self._release(host, tier, transport)
        if done.exit_code == -1 and not transport.is_active():
            raise self._lost(host, Unreachable(
                host.name, "the connection was lost during the request",
                hint="retry; if it persists the host may be rebooting"))
        return done

    def _lost(self, host: Host, error: SSHError) -> SSHError:
        self._note(host, error)
        return error

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R | SSHError]:
        """`fn` over items, at most fanout_concurrency at once, in order; an SSHError becomes
        that item's result so one host down never hides the others' answers."""
        def guarded(item: T) -> R | SSHError:
            try:
                return fn(item)
            except SSHError as exc:
                return exc
        return list(self._fanout.map(guarded, list(items)))

    def close(self) -> None:
        self._fanout.shutdown(wait=False, cancel_futures=True)
        with self._slots_lock:
            slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            with slot.lock:
                for session in slot.idle_sessions:
                    session.close()
                for transport in {slot.transport, *slot.in_use} - {None}:
                    transport.close()
                slot.transport, slot.in_use, slot.idle_sessions, slot.sessions = None, {}, [], 0
