"""Where the server's announcer hands each event: one body per format, queued for each
webhook that wants the event. Nothing here waits on a network (delivery.py does, in its
workers)."""

import time
from datetime import datetime, timezone
from typing import Any

from mcp_linux_infra.audit import Audit
from mcp_linux_infra.console_links import proposal_url
from mcp_linux_infra.notify.body import FORMATS, encode
from mcp_linux_infra.notify.delivery import GuardedAudit, Item, Webhook
from mcp_linux_infra.notify.events import EVENTS
from mcp_linux_infra.settings import Settings


class Notifier:
    def __init__(self, settings: Settings, audit: Audit):
        self.settings = settings
        self._log = GuardedAudit(audit)
        self.webhooks = [Webhook(i, spec, settings, self._log)
                         for i, spec in enumerate(settings.webhooks)]

    def notify(self, event: str, proposal: Any, at: float | None = None) -> None:
        """The announcer's callback: queue the event, return at once. `at`: when the change
        happened (its transitions row; now if not given)."""
        if event not in EVENTS:
            self._log.write("warning", "webhook_unknown_event", notification=event,
                            proposal=getattr(proposal, "id", None))
            return
        wanted = [w for w in self.webhooks if w.spec.wants(event)]
        if not wanted:
            return
        when = datetime.fromtimestamp(time.time() if at is None else at, timezone.utc)
        link = proposal_url(self.settings, proposal.id)
        bodies: dict[str, bytes] = {}
        for webhook in wanted:
            fmt = webhook.spec.format
            if fmt not in bodies:
                bodies[fmt] = encode(FORMATS[fmt](event, proposal, link, when))
            webhook.put(Item(event, proposal.id, bodies[fmt]))

    def close(self, grace: float | None = None) -> None:
        """Stop: what is queued may still go out for `grace` seconds (default: the webhook
        timeout), without retries; then the rest is dropped, each event audited."""
        grace = self.settings.webhook_timeout if grace is None else grace
        deadline = time.monotonic() + grace
        for webhook in self.webhooks:
            webhook.begin_close()
        for webhook in self.webhooks:
            webhook.finish_close(deadline)
        self._log.silence()
