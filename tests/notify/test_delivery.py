"""Delivery (notify/delivery.py, notifier.py) against a real HTTP receiver on a port the OS
picked: both bodies delivered, retries with backoff and Retry-After, timeouts, the bounded
queue, a caller that never waits, a shutdown that does not hang, and every failure audited.
Nothing sleeps: the tests wait on the receiver's requests and on audit lines."""

import threading
from datetime import datetime, timedelta, timezone

import pytest
from webhook_support import BLOCK, WAIT, AuditLines, Receiver, proposal

from mcp_linux_infra.notify.delivery import MAX_DELAY, retry_after
from mcp_linux_infra.notify.notifier import Notifier
from mcp_linux_infra.settings import Settings


@pytest.fixture
def lines():
    return AuditLines()


@pytest.fixture
def receivers():
    made = []

    def make(*script):
        made.append(Receiver(script))
        return made[-1]
    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def notifiers(lines):
    made = []

    def make(*hooks, **settings):
        config = {"_env_file": None, "webhooks": list(hooks), "webhook_backoff": 0.01,
                  "console_origin": "https://console.example:8443"}
        config.update(settings)
        made.append(Notifier(Settings(**config), lines.audit()))
        return made[-1]
    yield make
    for notifier in made:
        notifier.close(grace=0)


def test_both_bodies_delivered_with_the_console_link(receivers, notifiers, lines):
    plain, chat = receivers(), receivers()
    notifier = notifiers({"url": plain.url()}, {"url": chat.url(), "format": "slack"})
    notifier.notify("created", proposal())
    [body] = plain.wait(1)
    assert body["event"] == "created" and body["link"] == \
        "https://console.example:8443/p/p0123abcd"
    assert body["proposal"]["approvals"] == {"have": 0, "need": 1, "by": []}
    assert body["at"].endswith("Z") and datetime.fromisoformat(body["at"])
    [message] = chat.wait(1)
    assert list(message) == ["text"]
    assert "<https://console.example:8443/p/p0123abcd|Open it in the approval console>" \
        in message["text"]
    assert plain.requests[0]["headers"]["Content-Type"] == "application/json"
    assert plain.requests[0]["path"] == "/hook/SECRET-KEY"
    delivered = lines.wait("webhook_delivered", 2)
    assert {r["status"] for r in delivered} == {"HTTP 200"}
    assert "SECRET-KEY" not in repr(lines.records) and "SECRET-KEY" not in repr(
        notifier.settings)


def test_a_webhook_gets_only_its_events(receivers, notifiers):
    receiver = receivers()
    notifier = notifiers({"url": receiver.url(), "events": ["expired"]})
    for event in ("created", "approved", "expired"):
        notifier.notify(event, proposal())
    assert [b["event"] for b in receiver.wait(1)] == ["expired"]
    defaults = receivers()
    notifier = notifiers({"url": defaults.url()})
    for event in ("executing", "succeeded"):
        notifier.notify(event, proposal())
    assert [b["event"] for b in defaults.wait(1)] == ["succeeded"]


def test_failing_twice_then_delivered(receivers, notifiers, lines):
    receiver = receivers(500, 503)
    notifier = notifiers({"url": receiver.url()})
    notifier.notify("created", proposal())
    bodies = receiver.wait(3)
    assert bodies[0] == bodies[1] == bodies[2]
    [done] = lines.wait("webhook_delivered")
    assert done["attempt"] == 3
    retries = lines.named("webhook_retry")
    assert [(r["attempt"], r["reason"], r["retry_in"]) for r in retries] == [
        (1, "HTTP 500", 0.01), (2, "HTTP 503", 0.02)]  # backoff, doubled
    assert lines.named("webhook_failed") == []


def test_429_waits_for_retry_after(receivers, notifiers, lines):
    receiver = receivers((429, {"Retry-After": "1"}))
    notifier = notifiers({"url": receiver.url()})
    notifier.notify("created", proposal())
    receiver.wait(2)
    [retry] = lines.wait("webhook_retry")
    assert (retry["reason"], retry["retry_after"], retry["retry_in"]) == ("HTTP 429", 1.0, 1.0)
    lines.wait("webhook_delivered")


def test_a_refusal_is_final_and_audited(receivers, notifiers, lines):
    receiver = receivers(404)
    notifier = notifiers({"url": receiver.url()})
    notifier.notify("created", proposal(id="p00000001"))
    notifier.notify("created", proposal(id="p00000002"))
    bodies = receiver.wait(2)  # one worker, in order: the first was not tried again
    assert [b["proposal"]["id"] for b in bodies] == ["p00000001", "p00000002"]
    [failed] = lines.wait("webhook_failed")
    assert (failed["proposal"], failed["reason"], failed["retried"], failed["attempt"]) == (
        "p00000001", "HTTP 404", False, 1)
    assert failed["webhook"] == "#0 127.0.0.1"


def test_a_receiver_that_never_answers_times_out(receivers, notifiers, lines):
    receiver = receivers(BLOCK, BLOCK)
    notifier = notifiers({"url": receiver.url()}, webhook_timeout=0.2, webhook_attempts=2)
    notifier.notify("created", proposal())
    [failed] = lines.wait("webhook_failed")
    assert failed["reason"].startswith("timeout") and failed["attempt"] == 2
    assert len(receiver.requests) == 2 and not receiver.release.is_set()


def test_the_caller_never_waits(receivers, notifiers, lines):
    """The receiver holds the request until the test lets it go: notify() has returned,
    and more events are queued, while the first is still unanswered."""
    receiver = receivers(BLOCK)
    notifier = notifiers({"url": receiver.url()}, webhook_timeout=WAIT * 4)
    notifier.notify("created", proposal(id="p00000001"))
    receiver.wait(1)
    notifier.notify("approved", proposal(id="p00000001"))
    assert len(receiver.requests) == 1 and not receiver.release.is_set()
    receiver.release.set()
    assert [b["event"] for b in receiver.wait(2)] == ["created", "approved"]


def test_a_full_queue_drops_the_oldest_and_audits_it(receivers, notifiers, lines):
    receiver = receivers(BLOCK)
    notifier = notifiers({"url": receiver.url()}, webhook_queue_size=2,
                         webhook_timeout=WAIT * 4)
    notifier.notify("created", proposal(id="p00000001"))
    receiver.wait(1)  # in flight: the worker holds it, the queue is empty
    for n in range(2, 6):
        notifier.notify("created", proposal(id=f"p0000000{n}"))
    dropped = lines.wait("webhook_dropped", 2)
    assert [(d["proposal"], d["reason"], d["queue_size"]) for d in dropped] == [
        ("p00000002", "queue_full", 2), ("p00000003", "queue_full", 2)]
    receiver.release.set()
    assert [b["proposal"]["id"] for b in receiver.wait(3)] == [
        "p00000001", "p00000004", "p00000005"]


def _closed_in_a_thread(notifier, grace):
    done = threading.Thread(target=notifier.close, kwargs={"grace": grace})
    done.start()
    done.join(WAIT)
    assert not done.is_alive(), "close() hung"


def test_shutdown_does_not_wait_for_a_receiver_that_never_answers(receivers, notifiers,
                                                                  lines):
    receiver = receivers(BLOCK)
    notifier = notifiers({"url": receiver.url()}, webhook_timeout=WAIT * 4)
    notifier.notify("created", proposal(id="p00000001"))
    receiver.wait(1)
    notifier.notify("created", proposal(id="p00000002"))
    _closed_in_a_thread(notifier, grace=0.1)
    assert not receiver.release.is_set()  # the request is still held: close did not wait
    [dropped] = lines.named("webhook_dropped")
    assert (dropped["proposal"], dropped["reason"]) == ("p00000002", "shutdown")
    count = len(lines.records)
    notifier.notify("created", proposal(id="p00000003"))  # after close: nothing, not audited
    assert len(lines.records) == count


def test_shutdown_cuts_a_retry_wait_short(receivers, notifiers, lines):
    receiver = receivers(500)
    notifier = notifiers({"url": receiver.url()}, webhook_backoff=MAX_DELAY)
    notifier.notify("created", proposal())
    lines.wait("webhook_retry")
    _closed_in_a_thread(notifier, grace=WAIT * 10)  # returns when the worker ended
    [failed] = lines.named("webhook_failed")
    assert failed["reason"] == "HTTP 500; the server shut down before the retry"
    assert len(receiver.requests) == 1


def test_shutdown_still_sends_what_is_queued(receivers, notifiers, lines):
    receiver = receivers()
    notifier = notifiers({"url": receiver.url()})
    for n in range(1, 4):
        notifier.notify("expired", proposal(id=f"p0000000{n}"))
    _closed_in_a_thread(notifier, grace=WAIT)
    assert len(receiver.wait(3)) == 3 and lines.named("webhook_dropped") == []


NOW = datetime(2026, 12, 5, 3, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("header", "seconds"), [
    ("7", 7.0), (" 120 ", 120.0), (None, None), ("", None), ("soon", None), ("-3", None),
    ("1.5", None), ((NOW + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT"), 90.0),
    ((NOW - timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT"), 0.0),
])
def test_retry_after(header, seconds):
    assert retry_after(header, now=NOW) == seconds
