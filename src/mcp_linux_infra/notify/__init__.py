"""Notifications: a proposal's changes POSTed to the webhooks the operators configured
(LINUX_MCP_WEBHOOKS), so that people learn that a proposal waits for them (docs/NOTIFICATIONS.md).

Base modules only (settings, audit, display, console_links): the server feeds a `Notifier`
from its approval store's `transitions` table (server/announce.py).
"""
