"""`mcp:batch`: several whitelisted commands in one SSH round trip, JSON in and out.

Stdin is read with a byte cap and a deadline (a client that never closes stdin cannot
hold the wrapper). Each command is checked exactly like a single request, then the
allowed ones run concurrently on a small thread pool, each with its own timeout and an
equal share of the batch output cap, all inside one batch deadline.
"""

import json
import threading
import time

from mcp_infra_target.core import runner, stdin
from mcp_infra_target.core.refusal import LABEL, Refusal

RULE = "request/batch"


def read_stdin(fd: int, max_bytes: int, timeout_s: float) -> bytes:
    """All of stdin (core.stdin), refusing more than `max_bytes` or a stream still open at
    the deadline."""
    try:
        return stdin.read_all(fd, max_bytes, timeout_s)
    except stdin.InputTimeout:
        raise Refusal("batch_stdin_timeout", RULE, f"stdin not closed within {timeout_s}s")
    except stdin.InputTooLarge:
        raise Refusal("batch_too_large", RULE, "more than %d bytes on stdin" % max_bytes)


def parse(data: bytes, max_commands: int) -> list:
    """The batch document: {"commands": [{"id": ID, "command": TEXT}, ...]}."""
    try:
        document = json.loads(data.decode("utf-8"))
    except ValueError as error:
        raise Refusal("batch_bad_json", RULE, str(error)[:200])
    except RecursionError:  # nesting deeper than the interpreter's stack: still not a batch
        raise Refusal("batch_bad_json", RULE, "nested too deeply")
    if not isinstance(document, dict) or set(document) != {"commands"}:
        raise Refusal("batch_bad_shape", RULE, 'expected {"commands": [...]}')
    commands = document["commands"]
    if not isinstance(commands, list) or not commands:
        raise Refusal("batch_bad_shape", RULE, '"commands" must be a non-empty list')
    if len(commands) > max_commands:
        raise Refusal("batch_too_many", RULE, "%d commands, at most %d" % (len(commands), max_commands))
    entries = []
    for index, entry in enumerate(commands):
        if (not isinstance(entry, dict) or not set(entry) <= {"id", "command"}
                or not isinstance(entry.get("command"), str)):
            raise Refusal("batch_bad_shape", RULE, "entry %d needs a string \"command\"" % index)
        ident = entry.get("id", str(index))
        if not isinstance(ident, str) or not LABEL.fullmatch(ident):
            raise Refusal("batch_bad_shape", RULE, "entry %d: id must match %s" % (index, LABEL.pattern))
        entries.append((ident, entry["command"]))
    return entries


def _result(ident, command):
    return {"id": ident, "command": command, "status": None, "exit_code": None, "stdout": "",
            "stderr": "", "truncated": False, "duration_ms": 0, "refusal": None}


def _run_pool(work, jobs, workers):
    """Run `work(job)` for every job on at most `workers` threads (plain threading: the
    wrapper starts per request, and concurrent.futures costs more to import than it saves)."""
    pending = list(reversed(jobs))
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not pending:
                    return
                job = pending.pop()
            work(job)

    threads = [threading.Thread(target=worker) for _ in range(min(workers, len(jobs)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run(entries: list, prepare, limits: dict, kill_grace_s: float) -> tuple:
    """Check every entry with `prepare(text) -> (plan, env, timeout_s, cap, scratch_bytes,
    memory_bytes)` and run the allowed ones.

    Returns the result list (input order) and a summary for the audit record.
    """
    results = []
    jobs = []
    share = limits["batch_output_cap_bytes"] // len(entries)
    for ident, command in entries:
        result = _result(ident, command)
        results.append(result)
        try:
            plan, env, timeout_s, cap, scratch, memory = prepare(command)
        except Refusal as refusal:
            result.update(status="refused", exit_code=126, refusal=refusal.as_dict())
            continue
        result["rule"] = plan.rule
        jobs.append((result, plan, env, timeout_s, min(cap, share), scratch, memory))
    deadline = time.monotonic() + limits["batch_timeout_s"]

    def work(job):
        result, plan, env, timeout_s, cap, scratch, memory = job
        try:
            run_one(result, plan, env, min(timeout_s, deadline - time.monotonic()), cap, scratch,
                    memory)
        finally:
            plan.close()  # this entry's checked paths: held from its check to its end

    def run_one(result, plan, env, timeout_s, cap, scratch, memory):
        if timeout_s <= 0:
            result.update(status="timeout", exit_code=runner.EXIT_TIMEOUT,
                          stderr="[mcp-wrapper: batch deadline reached before start]\n")
            return
        streams = {"stdout": [], "stderr": []}
        outcome = runner.run(plan.argv, env, timeout_s,
                             lambda name, chunk: streams[name].append(chunk), cap_bytes=cap,
                             kill_grace_s=kill_grace_s, limits={"fsize": scratch, "data": memory},
                             pass_fds=plan.held.fds(), filters=plan.held.filters())
        status = "timeout" if outcome.timed_out else ("error" if outcome.error else "ok")
        result.update(status=status, exit_code=outcome.exit_code, truncated=outcome.truncated,
                      duration_ms=int(outcome.duration_s * 1000),
                      stdout=b"".join(streams["stdout"]).decode("utf-8", "replace"),
                      stderr=outcome.error or b"".join(streams["stderr"]).decode("utf-8", "replace"))

    _run_pool(work, jobs, int(limits["batch_parallel"]))
    summary = [{"id": r["id"], "status": r["status"], "exit": r["exit_code"],
                "rule": r.get("rule") or (r["refusal"] or {}).get("rule"),
                "reason": (r["refusal"] or {}).get("reason")} for r in results]
    for result in results:
        result.pop("rule", None)
    return results, summary
