"""The pool: one authenticated Transport per (host, tier), a channel per request.

Reuse is what makes calls cheap (a fresh connection costs ~150 ms, a channel on an open
transport ~3 ms). A transport found dead, or failing before the request was sent, is
replaced once, transparently. A transport whose key file has changed since it
authenticated is replaced too, so a rotated (and revoked) key stops being used at once;
the old transport is closed when its last in-flight request ends.
"""

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, TypeVar

import paramiko

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.settings import Settings
from mcp_linux_infra.ssh.connect import connect
from mcp_linux_infra.ssh.errors import AuthFailed, RequestTimeout, SSHError, Unreachable
from mcp_linux_infra.ssh.execute import Completed, Deadline, collect, start
from mcp_linux_infra.ssh.hostkeys import KnownHosts
from mcp_linux_infra.ssh.keyfile import KeyFile, Signature

Tier = Literal["reader", "pra"]
T = TypeVar("T")
R = TypeVar("R")
_NOT_STARTED = (paramiko.SSHException, EOFError, OSError)


class _Slot:
    """The current transport of one (host, tier) and the transports still in use."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.transport: paramiko.Transport | None = None
        self.key_signature: Signature | None = None
        self.in_use: dict[paramiko.Transport, int] = {}

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
            "reader": (settings.reader_user, KeyFile(settings.reader_key)),
            "pra": (settings.pra_user, KeyFile(settings.pra_key)),
        }
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._slots_lock = threading.Lock()
        self._fanout = ThreadPoolExecutor(max_workers=settings.fanout_concurrency,
                                          thread_name_prefix="ssh-fanout")

    def _slot(self, host: Host, tier: str) -> _Slot:
        with self._slots_lock:
            return self._slots.setdefault((host.name, tier), _Slot())

    def _load_key(self, host: Host, tier: str) -> tuple[paramiko.PKey, Signature]:
        keyfile = self._tiers[tier][1]
        try:
            return keyfile.load()
        except (OSError, paramiko.SSHException) as exc:
            raise AuthFailed(host.name, f"cannot load the {tier} key {keyfile.path}: {exc}",
                             hint="run: mcp-linux-infra keys init") from None

    def _connect(self, host: Host, tier: str) -> tuple[paramiko.Transport, Signature]:
        user, keyfile = self._tiers[tier]
        s = self.settings
        key, sig = self._load_key(host, tier)
        try:
            return connect(host, user, key, str(keyfile.path), self.known_hosts,
                           s.connect_timeout, s.keepalive_interval), sig
        except AuthFailed:
            if not keyfile.changed_since(sig):
                raise
        key, sig = self._load_key(host, tier)  # rotated while we connected: once more
        return connect(host, user, key, str(keyfile.path), self.known_hosts,
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
                slot.transport, slot.key_signature = self._connect(host, tier)
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
        step = min(self.settings.connect_timeout, timeout)
        transport, fresh = self._acquire(host, tier)
        try:
            channel = self._open(transport, command, stdin, step)
        except _NOT_STARTED as exc:
            self._release(host, tier, transport)
            if fresh:
                raise Unreachable(host.name, f"cannot start a request: {exc}") from None
            transport, _ = self._acquire(host, tier, stale=transport)
            try:
                channel = self._open(transport, command, stdin, step)
            except BaseException as exc2:
                self._release(host, tier, transport)
                if isinstance(exc2, _NOT_STARTED):
                    raise Unreachable(host.name, f"cannot start a request: {exc2}") from None
                raise
        except BaseException:
            self._release(host, tier, transport)
            raise
        try:
            done = collect(channel, deadline, self.settings.output_cap_bytes)
        except Deadline:
            raise RequestTimeout(
                host.name, f"no complete answer within {timeout:g} s",
                hint="the target normally stops a command at its own timeout first; "
                     "the host may be overloaded or the network slow") from None
        finally:
            self._release(host, tier, transport)
        if done.exit_code == -1 and not transport.is_active():
            raise Unreachable(host.name, "the connection was lost during the request",
                              hint="retry; if it persists the host may be rebooting")
        return done

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
                for transport in {slot.transport, *slot.in_use} - {None}:
                    transport.close()
                slot.transport, slot.in_use = None, {}
