"""The client side of mcp-wrapper's protocol (system/README.md, "The read-only protocol").

A request is one command line; `mcp:trace=ID` in front joins the target's audit record to
ours. Exit 126 with one `{"mcp_refusal": ...}` line on stderr is a refusal, 124 a timeout,
and a marker line at the end of stdout says the target cut the output. `mcp:batch` takes
JSON on stdin and answers JSON; `mcp:policy`, `mcp:explain`, `mcp:version` answer JSON.
"""

import json
import re
import shlex
import time
from dataclasses import dataclass
from typing import Literal

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.ssh.channel import Completed
from mcp_linux_infra.ssh.pool import Pool

EXIT_REFUSED = 126
EXIT_TIMEOUT = 124
TRACE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TRUNCATED = re.compile(r"\n?\[mcp-wrapper: output truncated at (\d+) bytes\]\n?\Z")
_TIMED_OUT = re.compile(r"\[mcp-wrapper: timed out after ([0-9.]+) s\]")

Status = Literal["ok", "refused", "timeout", "error"]


class ProtocolError(Exception):
    """The target answered something that is not the protocol (an old or broken wrapper)."""


@dataclass(frozen=True)
class Refusal:
    reason: str
    rule: str | None
    detail: str
    command: str | None

    @classmethod
    def of(cls, data: dict) -> "Refusal":
        return cls(reason=str(data.get("reason")), rule=data.get("rule"),
                   detail=str(data.get("detail") or ""), command=data.get("command"))


@dataclass(frozen=True)
class Outcome:
    """One command's answer: status ok means it ran (its exit code may still be non-zero)."""

    command: str
    status: Status
    exit_code: int | None
    stdout: str
    stderr: str
    truncated: bool
    refusal: Refusal | None = None
    duration_ms: int = 0


def command_line(words: list[str] | str) -> str:
    """Words are quoted for the target's POSIX shlex; a string is sent as typed."""
    return words if isinstance(words, str) else shlex.join(words)


def with_trace(line: str, trace: str | None) -> str:
    return f"mcp:trace={trace} {line}" if trace else line


def refusal_line(stderr: str | bytes) -> Refusal | None:
    """The refusal in the last line of stderr (`{"mcp_refusal": {...}}`, with exit 126), or
    None: the same line in both tiers' protocols (mcp-wrapper, pra-exec and pra-run)."""
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    lines = stderr.strip().splitlines()
    try:
        data = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("mcp_refusal"), dict):
        return Refusal.of(data["mcp_refusal"])
    return None


def outcome(command: str, done: Completed) -> Outcome:
    """Interpret the answer to a single (non-batch) request."""
    stdout = done.stdout.decode("utf-8", "replace")
    stderr = done.stderr.decode("utf-8", "replace")
    truncated = done.truncated
    marker = _TRUNCATED.search(stdout)
    if marker:
        stdout, truncated = stdout[:marker.start()] + "\n", True
    status: Status = "ok"
    refusal = None
    if done.exit_code == EXIT_REFUSED:
        refusal = refusal_line(stderr)
        if refusal is not None:
            status, stderr = "refused", ""
    elif done.exit_code == EXIT_TIMEOUT and _TIMED_OUT.search(stderr):
        status = "timeout"
    return Outcome(command=command, status=status, exit_code=done.exit_code, stdout=stdout,
                   stderr=stderr, truncated=truncated, refusal=refusal,
                   duration_ms=int(done.duration_s * 1000))


def _batch_outcome(entry: dict) -> Outcome:
    status = entry.get("status")
    if status not in ("ok", "refused", "timeout", "error"):
        raise ProtocolError(f"batch result with status {status!r}")
    refusal = entry.get("refusal")
    return Outcome(command=str(entry.get("command")), status=status,
                   exit_code=entry.get("exit_code"), stdout=entry.get("stdout") or "",
                   stderr=entry.get("stderr") or "", truncated=bool(entry.get("truncated")),
                   refusal=Refusal.of(refusal) if isinstance(refusal, dict) else None,
                   duration_ms=int(entry.get("duration_ms") or 0))


def _json_answer(what: str, out: Outcome) -> dict:
    if out.status == "refused":
        raise ProtocolError(f"the target refused {what}: {out.refusal.reason} "
                            f"({out.refusal.detail}); is its mcp-wrapper current?")
    if out.exit_code != 0 or out.truncated:
        raise ProtocolError(f"{what} failed (exit {out.exit_code}"
                            f"{', output cut' if out.truncated else ''}): "
                            f"{out.stderr.strip()[:300]}")
    try:
        data = json.loads(out.stdout)
    except ValueError:
        raise ProtocolError(f"{what} did not answer JSON: {out.stdout[:200]!r}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{what} answered {type(data).__name__}, not an object")
    return data


class Target:
    """One host's read-only tier, for one tool call (its trace id goes on every request)."""

    def __init__(self, pool: Pool, host: Host, trace: str | None = None):
        self.pool, self.host, self.trace = pool, host, trace

    def _send(self, line: str, stdin: bytes | None = None) -> Completed:
        return self.pool.run(self.host, with_trace(line, self.trace), stdin=stdin)

    def run(self, words: list[str] | str) -> Outcome:
        line = command_line(words)
        return outcome(line, self._send(line))

    def batch(self, commands: dict[str, list[str] | str]) -> dict[str, Outcome]:
        """Several commands in one round trip; answers by id, in the order given."""
        lines = {ident: command_line(words) for ident, words in commands.items()}
        document = {"commands": [{"id": i, "command": c} for i, c in lines.items()]}
        began = time.monotonic()
        answer = _json_answer("mcp:batch", outcome(
            "mcp:batch", self._send("mcp:batch", json.dumps(document).encode())))
        results = answer.get("results")
        if not isinstance(results, list):
            raise ProtocolError("mcp:batch answered without a results list")
        by_id = {str(r.get("id")): _batch_outcome(r) for r in results if isinstance(r, dict)}
        missing = set(lines) - set(by_id)
        if missing:
            raise ProtocolError(f"mcp:batch answered no result for {sorted(missing)} "
                                f"(after {time.monotonic() - began:.1f} s)")
        return {ident: by_id[ident] for ident in lines}

    def explain(self, command: str) -> dict:
        return _json_answer("mcp:explain", self.run(f"mcp:explain {command}"))

    def policy(self) -> dict:
        return _json_answer("mcp:policy", self.run("mcp:policy"))

    def version(self) -> dict:
        return _json_answer("mcp:version", self.run("mcp:version"))
