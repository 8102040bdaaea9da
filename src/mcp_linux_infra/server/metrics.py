"""The server's Prometheus metrics: one registry per AppState (never the process-wide
default, so two servers in one process, as in the tests, never share or clash), served at
`/metrics` by the HTTP transport (server/http.py).

Every label value comes from a closed set: tool names (code), outcomes (below), refusal
reasons (REASONS: the target's documented list and the server's own), proposal states
(the store's), webhook indexes (configuration) and host names only from the inventory.
Anything else, a reason a broken or hostile target invents included, is counted as
`other`: what the model or a target sends can never create a series.

Counters and the latency histogram are updated by the tool calls themselves; proposals,
hosts and webhooks are read when scraped (StateCollector), from what the store, the pool
and the notifier already keep, so nothing probes a host or polls for metrics.
"""

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from mcp_linux_infra.approvals.store import STATES
from mcp_linux_infra.ssh.errors import SSHError

PREFIX = "mcp_linux_infra"
OTHER = "other"


def _kinds(cls: type) -> set[str]:
    return {cls.kind}.union(*(_kinds(sub) for sub in cls.__subclasses__()))


# How a tool call ended: ok, refused (a Refused ToolError), a failure the model can act on
# (error), one of the SSH failures (their `kind`), or a bug (internal_error).
OUTCOMES = frozenset({"ok", "refused", "error", "internal_error"} | _kinds(SSHError))
# The target's refusal reasons (system/README.md, "Refusal reasons"; tests/server compares)
# and the server's own (`missing_scope`: a token without the tool's scope).
_TARGET_REASONS = """
shell_request empty too_long invalid_utf8 control_char unicode_format_char non_printable_char
bad_command tokenise_error too_many_tokens bad_trace_id unknown_reserved_word
reserved_word_args reserved_word_not_allowed_here command_path_not_allowed unknown_command
command_not_installed unknown_subcommand missing_subcommand unknown_option option_needs_value
option_takes_no_value option_required bad_value too_many_operands too_few_operands
bad_operand_count destination_not_allowed path_not_absolute path_outside_roots path_denied
path_not_found path_not_regular path_changed path_unverifiable path_unstable
batch_stdin_timeout batch_too_large batch_bad_json batch_bad_shape batch_too_many
session_bad_frame session_line_too_long policy_invalid library_untrusted test_root_refused
internal_error unknown_action bad_envelope missing_signature too_many_signatures bad_document
not_canonical bad_signature unsupported_key_type unknown_signer ambiguous_signer
wrong_namespace signer_not_valid user_presence_missing user_verification_missing
signer_not_security_key webauthn_origin_mismatch duplicate_principal not_enough_approvals
wrong_host bad_window window_too_long not_yet_valid expired bad_params replayed_nonce
step_out_of_order busy config_error"""
TARGET_REASONS = frozenset(_TARGET_REASONS.split())
REASONS = TARGET_REASONS | {"missing_scope"}
BY = frozenset({"target", "server"})
# Seconds: a kept session answers in ~2 ms, a new connection ~150 ms, a fan-out or an
# action up to the command timeout.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def closed(value: object, allowed: frozenset[str]) -> str:
    return value if isinstance(value, str) and value in allowed else OTHER


class Metrics:
    """The instruments tool calls update, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tool_calls = Counter(
            f"{PREFIX}_tool_calls", "Tool calls, by tool and how they ended",
            ["tool", "outcome"], registry=self.registry)
        self.tool_seconds = Histogram(
            f"{PREFIX}_tool_call_duration_seconds", "Tool call latency, by tool",
            ["tool"], buckets=BUCKETS, registry=self.registry)
        self.refusals = Counter(
            f"{PREFIX}_refusals", "Refusals, by reason code and by whom (the target's "
            "policy or the server)", ["reason", "by"], registry=self.registry)

    def call(self, tool: str, outcome: str, seconds: float) -> None:
        """`tool`: a registered tool's name (code, not the client's string)."""
        self.tool_calls.labels(tool, closed(outcome, OUTCOMES)).inc()
        self.tool_seconds.labels(tool).observe(seconds)

    def refused(self, reason: object, by: str) -> None:
        self.refusals.labels(closed(reason, REASONS), closed(by, BY)).inc()

    def watch(self, state) -> None:
        """Read `state` (an AppState) at each scrape."""
        self.registry.register(StateCollector(state))


class StateCollector:
    """Proposals by state, hosts' last connection results, webhook deliveries: read from
    the store (one GROUP BY), the pool and the notifier when scraped."""

    def __init__(self, state):
        self.state = state

    def describe(self):
        return []  # collected only when scraped, never at registration

    def collect(self):
        yield from self._proposals()
        yield from self._hosts()
        yield from self._webhooks()

    def _proposals(self):
        counts = self.state.approvals.count_by_state()
        family = GaugeMetricFamily(f"{PREFIX}_proposals", "Proposals in the approval store, "
                                   "by state", labels=["state"])
        for state in STATES:
            family.add_metric([state], counts.get(state, 0))
        yield family

    def _hosts(self):
        inventory = self.state.hosts.get().hosts
        results = self.state.pool.connection_results()
        up = GaugeMetricFamily(f"{PREFIX}_host_reachable", "1 if the last connection to "
                               "the host (by a tool call) worked, 0 if it failed; absent "
                               "until one was tried", labels=["host"])
        for name in sorted(inventory):
            if name in results:
                up.add_metric([name], 1 if results[name] is None else 0)
        yield up
        yield GaugeMetricFamily(f"{PREFIX}_hosts_reachable", "Inventory hosts whose last "
                                "connection worked",
                                value=sum(1 for n in inventory if n in results
                                          and results[n] is None))
        yield GaugeMetricFamily(f"{PREFIX}_inventory_hosts", "Hosts in the inventory",
                                value=len(inventory))

    def _webhooks(self):
        deliveries = CounterMetricFamily(
            f"{PREFIX}_webhook_deliveries", "Webhook events by how their delivery ended "
            "(delivered, failed) and retries", labels=["webhook", "outcome"])
        drops = CounterMetricFamily(
            f"{PREFIX}_webhook_drops", "Webhook events dropped unsent (queue_full, "
            "shutdown)", labels=["webhook", "reason"])
        queued = GaugeMetricFamily(f"{PREFIX}_webhook_queue_length", "Events waiting "
                                   "in a webhook's queue", labels=["webhook"])
        for index, webhook in enumerate(self.state.notifier.webhooks):
            counts = webhook.counts()
            for outcome in ("delivered", "failed", "retried"):
                deliveries.add_metric([str(index), outcome], counts.get(outcome, 0))
            for reason in ("queue_full", "shutdown"):
                drops.add_metric([str(index), reason], counts.get(f"dropped_{reason}", 0))
            queued.add_metric([str(index)], webhook.queued())
        yield deliveries
        yield drops
        yield queued
