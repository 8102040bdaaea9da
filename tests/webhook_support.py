"""A real HTTP receiver for webhook tests, on a port the OS picks, whose answers the test
scripts: a status (with headers), or BLOCK (hold the request until the test releases it).
Every wait is on a condition, with a generous timeout; nothing sleeps."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mcp_linux_infra.approvals.store import Proposal
from mcp_linux_infra.audit import Audit

WAIT = 60.0
BLOCK = "block"


class Receiver:
    """`script`: what the first requests are answered (an int status, (status, headers) or
    BLOCK); every later request gets 200."""

    def __init__(self, script=()):
        self.script = list(script)
        self.requests: list[dict] = []
        self.cond = threading.Condition()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.cond:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                              "body": json.loads(body)})
                    answer = receiver.script.pop(0) if receiver.script else 200
                    receiver.cond.notify_all()
                if answer == BLOCK:
                    receiver.release.wait()
                    answer = 200
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up (its timeout) while we held the request

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook/SECRET-KEY") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def wait(self, count: int, timeout: float = WAIT) -> list[dict]:
        """The bodies of the first `count` requests, once they arrived."""
        with self.cond:
            arrived = self.cond.wait_for(lambda: len(self.requests) >= count, timeout)
            assert arrived, f"{len(self.requests)} of {count} requests within {timeout} s"
            return [r["body"] for r in self.requests[:count]]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class AuditLines:
    """An audit stream the test can wait on."""

    def __init__(self):
        self.records: list[dict] = []
        self.cond = threading.Condition()

    def write(self, text: str) -> None:
        with self.cond:
            self.records.extend(json.loads(t) for t in text.splitlines() if t)
            self.cond.notify_all()

    def flush(self) -> None:
        pass

    def audit(self, path: Path | None = None) -> Audit:
        return Audit(path, self)

    def named(self, event: str) -> list[dict]:
        with self.cond:
            return [r for r in self.records if r["event"] == event]

    def wait(self, event: str, count: int = 1, timeout: float = WAIT) -> list[dict]:
        """The first `count` records of `event`, once written."""
        with self.cond:
            found = self.cond.wait_for(
                lambda: len([r for r in self.records if r["event"] == event]) >= count, timeout)
            assert found, f"no {count} x {event} in {self.records}"
            return [r for r in self.records if r["event"] == event][:count]


def proposal(approver: str | None = None, **fields) -> Proposal:
    """A Proposal as the (schema 2) store returns it; `approver`: its one approval."""
    now = time.time()
    row = {"id": "p0123abcd", "created_at": now, "updated_at": now, "state": "pending",
           "host": "web-01", "action": "restart_service", "params": {"unit": "nginx"},
           "rationale": "nginx is down since 10:02", "preview": None, "action_info": None,
           "max_window": 3600, "required": 1, "proposed_by": "model:local", "trace": None,
           "document_text": None, "nonce": None, "not_before": None, "not_after": None,
           "reason": None, "executor": None, "sent_at": None, "result": None, "note": None,
           "approvals": [] if approver is None else [
               {"principal": approver, "method": "cli", "at": now, "key_type": "ssh-ed25519"}]}
    row.update(fields)
    return Proposal(**row)
