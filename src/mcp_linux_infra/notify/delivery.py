"""One webhook's delivery: a bounded queue and one worker thread, so that the caller (a tool
call, through the approval store) only ever appends to a queue and never waits on a network.

The queue drops its oldest event when full. Each event is tried up to `attempts` times:
a 2xx is delivered; a timeout, a connection error, 408, 425, 429 or a 5xx is retried after
`backoff`, 2 x `backoff`, ... (at most MAX_DELAY), or after the receiver's Retry-After when
that is longer; any other answer (a redirect too: none is followed) is final. Every drop,
retry and failure is one audit line, naming the webhook by its index and host, never by its
URL (a chat webhook's URL is its key), and is counted (`counts`, read by the metrics).
"""

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx2

from mcp_linux_infra import __version__
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.settings import Settings, WebhookSpec

MAX_DELAY = 300.0
RETRIED = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Item:
    event: str
    proposal: str
    body: bytes


class GuardedAudit:
    """The audit as the workers use it: silent once the notifier closed, since a worker still
    waiting on a receiver may finish after the audit file was closed."""

    def __init__(self, audit: Audit):
        self._audit = audit
        self._lock = threading.Lock()
        self._open = True

    def write(self, level: str, name: str, /, **fields: object) -> None:
        with self._lock:
            if self._open:
                getattr(self._audit, level)(name, **fields)

    def silence(self) -> None:
        with self._lock:
            self._open = False


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None if absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


def name_of(index: int, spec: WebhookSpec) -> str:
    """`#0 hooks.slack.com`: how audit lines name a webhook."""
    return f"#{index} {urlsplit(spec.url).hostname}"


class Webhook:
    """The queue and worker of one configured webhook."""

    def __init__(self, index: int, spec: WebhookSpec, settings: Settings, log: GuardedAudit):
        self.spec = spec
        self.name = name_of(index, spec)
        self._log = log
        self._size = settings.webhook_queue_size
        self._attempts = settings.webhook_attempts
        self._backoff = settings.webhook_backoff
        self._items: deque[Item] = deque()
        self._cond = threading.Condition()
        self._counts: Counter[str] = Counter()  # delivered, failed, retried, dropped_REASON
        self._closing = False  # no more retries; what is queued goes out until `stop`
        self._stopped = False
        self._client = httpx2.Client(
            timeout=settings.webhook_timeout, follow_redirects=False,
            headers={"Content-Type": "application/json",
                     "User-Agent": f"mcp-linux-infra/{__version__}"})
        self._thread = threading.Thread(target=self._run, name=f"webhook{index}", daemon=True)
        self._thread.start()

    # -- the caller's side: append, never wait ----------------------------------------------
    def put(self, item: Item) -> None:
        with self._cond:
            refused = self._closing
            dropped = None
            if not refused:
                if len(self._items) >= self._size:
                    dropped = self._items.popleft()
                self._items.append(item)
                self._cond.notify()
        if refused:
            self._dropped(item, "shutdown")
        elif dropped is not None:
            self._dropped(dropped, "queue_full")

    def _count(self, what: str) -> None:
        with self._cond:
            self._counts[what] += 1

    def counts(self) -> dict[str, int]:
        """Events delivered, failed, retried and dropped (by reason) so far: the metrics'."""
        with self._cond:
            return dict(self._counts)

    def queued(self) -> int:
        with self._cond:
            return len(self._items)

    def _dropped(self, item: Item, reason: str) -> None:
        self._count(f"dropped_{reason}")
        self._log.write("warning", "webhook_dropped", webhook=self.name, notification=item.event,
                        proposal=item.proposal, reason=reason, queue_size=self._size)

    # -- the worker ---------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._items or self._closing or self._stopped)
                if self._stopped or not self._items:
                    return
                item = self._items.popleft()
            try:
                self._deliver(item)
            except Exception as exc:  # a bug must not end the worker: audit it, go on
                self._count("failed")
                self._log.write("error", "webhook_failed", webhook=self.name,
                                notification=item.event, proposal=item.proposal,
                                reason=f"internal error: {type(exc).__name__}: {exc}")

    def _deliver(self, item: Item) -> None:
        fields = {"webhook": self.name, "notification": item.event,
                  "proposal": item.proposal}
        for attempt in range(1, self._attempts + 1):
            outcome, reason, asked = self._attempt(item)
            if outcome == "delivered":
                self._count("delivered")
                self._log.write("info", "webhook_delivered", attempt=attempt, status=reason,
                                **fields)
                return
            if outcome == "final" or attempt == self._attempts:
                self._count("failed")
                self._log.write("error", "webhook_failed", attempt=attempt, reason=reason,
                                retried=outcome != "final", **fields)
                return
            self._count("retried")
            delay = min(MAX_DELAY, max(self._backoff * 2 ** (attempt - 1), asked or 0.0))
            self._log.write("warning", "webhook_retry", attempt=attempt, reason=reason,
                            retry_in=delay, retry_after=asked, **fields)
            with self._cond:
                if self._cond.wait_for(lambda: self._closing, timeout=delay):
                    self._count("failed")
                    self._log.write("error", "webhook_failed", attempt=attempt,
                                    reason=f"{reason}; the server shut down before the retry",
                                    retried=True, **fields)
                    return

    def _attempt(self, item: Item) -> tuple[str, str, float | None]:
        """("delivered" | "retry" | "final", why, Retry-After seconds or None). The answer's
        body is never read."""
        try:
            with self._client.stream("POST", self.spec.url, content=item.body) as response:
                code = response.status_code
                asked = retry_after(response.headers.get("Retry-After"))
        except httpx2.TimeoutException as exc:
            return "retry", f"timeout ({type(exc).__name__})", None
        except httpx2.HTTPError as exc:
            return "retry", f"{type(exc).__name__}: {self._hide_url(str(exc))}", None
        if 200 <= code < 300:
            return "delivered", f"HTTP {code}", None
        if code in RETRIED or code >= 500:
            return "retry", f"HTTP {code}", asked
        return "final", f"HTTP {code}", None

    def _hide_url(self, text: str) -> str:
        return text.replace(self.spec.url, self.name)

    # -- shutdown -----------------------------------------------------------------------------
    def begin_close(self) -> None:
        """Take no more events and retry nothing; what is queued still goes out."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def finish_close(self, deadline: float) -> None:
        """Wait for the worker until `deadline` (time.monotonic); then drop, audited, what is
        still queued. A request still in flight is left to its (daemon) thread."""
        self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._stopped = True
            left = list(self._items)
            self._items.clear()
            self._cond.notify_all()
        for item in left:
            self._dropped(item, "shutdown")
        if not self._thread.is_alive():
            self._client.close()

    def alive(self) -> bool:
        return self._thread.is_alive()
