"""The events a proposal's life announces (its `transitions` rows, server/announce.py),
each with the words a chat message says of it."""

EVENTS: dict[str, str] = {
    "created": "waits for approval",
    "approval_added": "got an approval",
    "approved": "is approved",
    "rejected": "was rejected",
    "executing": "is being executed",
    "succeeded": "was executed: succeeded",
    "failed": "was executed: failed",
    "already-satisfied": "was executed: nothing needed doing",
    "expired": "expired",
}

# what a webhook without "events" gets: everything but the short-lived `executing`
DEFAULT_EVENTS: frozenset[str] = frozenset(EVENTS) - {"executing"}
