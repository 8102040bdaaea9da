"""What lives as long as the server: settings, hosts, pool, caches, learning and approval
stores, the notifier with its announcer, the expiry sweep, audit, metrics."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mcp_linux_infra.approvals.store import ApprovalStore, open_approvals
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.inventory import Inventory, load_inventory
from mcp_linux_infra.notify.notifier import Notifier
from mcp_linux_infra.readonly.protocol import Target
from mcp_linux_infra.server.announce import Announcer
from mcp_linux_infra.server.learning import LearningStore, open_learning
from mcp_linux_infra.server.metrics import Metrics
from mcp_linux_infra.settings import Settings
from mcp_linux_infra.ssh.keyfile import signature
from mcp_linux_infra.ssh.pool import Pool


class HostCatalog:
    """The inventory, read again when one of its files changes (`lab up` rewrites it)."""

    def __init__(self, paths: list[Path]):
        self.paths = [Path(p) for p in paths]
        self._lock = threading.Lock()
        self._seen: tuple | None = None
        self._inventory: Inventory | None = None

    def _fingerprint(self) -> tuple:
        parts = []
        for path in self.paths:
            roots = [path] if path.is_dir() else [path, path.parent / "group_vars",
                                                  path.parent / "host_vars"]
            for root in roots:
                files = sorted(root.rglob("*")) if root.is_dir() else [root]
                parts += [(str(f), signature(f)) for f in files]
        return tuple(parts)

    def get(self) -> Inventory:
        with self._lock:
            seen = self._fingerprint()
            if self._inventory is None or seen != self._seen:
                self._inventory = load_inventory(self.paths)
                self._seen = seen
            return self._inventory


class PolicyCache:
    """Each host's effective policy (mcp:policy, ~70 KB), kept for `ttl` seconds."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, dict]] = {}

    def get(self, target: Target) -> dict:
        name = target.host.name
        with self._lock:
            entry = self._entries.get(name)
        if entry is not None and time.monotonic() - entry[0] < self.ttl:
            return entry[1]
        policy = target.policy()
        with self._lock:
            self._entries[name] = (time.monotonic(), policy)
        return policy


class ExpirySweep:
    """Expires due proposals every `interval` seconds, so that "expired" is announced when
    it happens, not when someone next looks."""

    def __init__(self, store: ApprovalStore, interval: float, audit: Audit,
                 clock: Callable[[], float] = time.time):
        self._store = store
        self._interval = interval
        self._audit = audit
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="expiry-sweep", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._store.expire_due(self._clock())
            except Exception as exc:  # the next sweep tries again
                self._audit.error("expiry_sweep_failed", error=f"{type(exc).__name__}: {exc}")

    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class AppState:
    settings: Settings
    hosts: HostCatalog
    pool: Pool
    policies: PolicyCache
    learning: LearningStore
    approvals: ApprovalStore
    notifier: Notifier
    announcer: Announcer | None
    sweep: ExpirySweep
    audit: Audit
    metrics: Metrics

    @classmethod
    def open(cls, settings: Settings, audit: Audit | None = None) -> "AppState":
        audit = audit or Audit(settings.audit_log)
        approvals = open_approvals(settings, audit)
        notifier = Notifier(settings, audit)
        # without webhooks, claim nothing: another server on this state directory may have some
        announcer = Announcer(approvals, notifier.notify, audit,
                              settings.webhook_poll_interval, settings.proposal_ttl
                              ) if settings.webhooks else None
        state = cls(settings=settings, hosts=HostCatalog(settings.inventory),
                    pool=Pool(settings), policies=PolicyCache(settings.policy_cache_ttl),
                    learning=open_learning(settings),
                    approvals=approvals, notifier=notifier, announcer=announcer,
                    sweep=ExpirySweep(approvals, settings.expiry_sweep_interval, audit),
                    audit=audit, metrics=Metrics())
        state.metrics.watch(state)
        return state

    def close(self) -> None:
        self.sweep.close()
        if self.announcer is not None:
            self.announcer.close()
        self.notifier.close()
        self.pool.close()
        self.learning.close()
        self.approvals.close()
        self.audit.close()


StateFactory = Callable[[], AppState]


class Runtime:
    """Where static resources, which get no Context, find the state the lifespan opened."""

    state: AppState | None = None
