"""The request pipeline of `mcp-wrapper` (system/README.md, "The read-only protocol").

screen -> tokenise -> reserved words or command lookup -> typed validation -> supervised
run -> one audit record. Every way of saying no is a Refusal: exit 126 and one JSON line
on stderr. Nothing here trusts the client beyond the words it typed. A request arrives in
SSH_ORIGINAL_COMMAND, or as one frame of an `mcp:session` (session.py): the pipeline is
the same, only where its output goes differs.
"""

import json
import os
import resource
import time

from mcp_infra_target import VERSION
from mcp_infra_target.core import audit, runner
from mcp_infra_target.core.bootstrap import UntrustedPath
from mcp_infra_target.core.layout import Layout
from mcp_infra_target.core.refusal import EXIT_REFUSED, ClientGone, Refusal, take_trace
from mcp_infra_target.readonly import argvparse, clientio, policy, screen, tokenise

NAME = "mcp-wrapper"
EXIT_CLIENT_GONE = 141
# How long a refusal written before the policy is read may wait for the client; from then on
# a request's writes wait at most until its deadline (its time limit plus the kill grace).
EARLY_WRITE_S = 10


class _PolicySource:
    """The trusted policy with its top level checked; commands are compiled when a request
    names them (the whole file was validated at deployment, and `mcp:policy` validates it
    again). Trust is checked for every request; the file is read again whenever it changed,
    so a session that outlives a deployment follows it."""

    def __init__(self, layout):
        self.layout, self.key, self.loaded = layout, None, None

    def get(self):
        try:
            path = self.layout.trusted_policy()
            info = os.stat(path)
            key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
            if key != self.key:
                self.loaded, self.key = policy.load_for_request(path), key
        except (OSError, UntrustedPath, policy.PolicyError) as error:
            self.key = self.loaded = None
            raise Refusal("policy_invalid", "policy/load", str(error))
        return self.loaded


def _plan_words(loaded, tokens):
    """Plan a command's words (reserved words refused): for explain and batch entries."""
    if not tokens:
        raise Refusal("empty", "request/reserved", "no command given")
    if tokens[0].startswith("mcp:"):
        raise Refusal("reserved_word_not_allowed_here", "request/reserved",
                      f"{tokens[0][:32]!r} cannot be used inside another request")
    plan = argvparse.plan(loaded, tokens)
    return (plan, loaded.environment, plan.limit(loaded, "timeout_s"),
            plan.limit(loaded, "output_cap_bytes"), plan.limit(loaded, "scratch_bytes"),
            plan.limit(loaded, "memory_bytes"))


def _prepare(loaded, text):
    """Screen, split and plan one batch entry exactly like a whole request."""
    screen.check(text, loaded.limits["request_max_bytes"])
    return _plan_words(loaded, tokenise.split(text, loaded.limits["max_tokens"]))


class _Channel:
    """A request on its own channel: output streams to fds 1/2 (non-blocking) as it comes,
    each write waiting for the client at most until `deadline`; stdin is fd 0."""

    def __init__(self):
        self.ends_with_newline = True
        self.deadline = None

    def sink(self, stream, chunk):
        clientio.write_all(1 if stream == "stdout" else 2, chunk, self.deadline)
        if stream == "stdout" and chunk:
            self.ends_with_newline = chunk.endswith(b"\n")

    def text(self, stream, text):
        self.sink(stream, text.encode("utf-8"))

    def stdin(self, limits):
        from mcp_infra_target.readonly import batch
        return batch.read_stdin(0, limits["batch_stdin_max_bytes"],
                                limits["batch_stdin_timeout_s"])


class _Buffered(_Channel):
    """A request inside a session: output is kept (the command's cap bounds it) and sent as
    one answer; stdin is what the frame carried."""

    def __init__(self, data):
        super().__init__()
        self.data = data
        self.streams = {"stdout": bytearray(), "stderr": bytearray()}

    def sink(self, stream, chunk):
        self.streams[stream] += chunk
        if stream == "stdout" and chunk:
            self.ends_with_newline = chunk.endswith(b"\n")

    def stdin(self, limits):
        if len(self.data) > limits["batch_stdin_max_bytes"]:
            raise Refusal("batch_too_large", "request/batch",
                          "more than %d bytes on stdin" % limits["batch_stdin_max_bytes"])
        return self.data


def _write_json(io, document):
    io.text("stdout", json.dumps(document, sort_keys=True) + "\n")


def _run_single(io, loaded, tokens, record):
    plan = argvparse.plan(loaded, tokens)
    io.deadline = time.monotonic() + plan.limit(loaded, "timeout_s") + loaded.kill_grace_s
    try:
        record.update(decision="allowed", rule=plan.rule, argv=plan.argv)
        if plan.held.passed:
            record["paths"] = plan.held.audit()
        cap = plan.limit(loaded, "output_cap_bytes")
        timeout_s = plan.limit(loaded, "timeout_s")
        outcome = runner.run(plan.argv, loaded.environment, timeout_s, io.sink, cap_bytes=cap,
                             kill_grace_s=loaded.kill_grace_s,
                             limits={"fsize": plan.limit(loaded, "scratch_bytes"),
                                     "data": plan.limit(loaded, "memory_bytes")},
                             pass_fds=plan.held.fds(), filters=plan.held.filters())
    finally:
        plan.close()
    record.update(bytes=outcome.output_bytes, truncated=outcome.truncated,
                  timed_out=outcome.timed_out)
    if outcome.error:
        record["error"] = outcome.error
        io.text("stderr", f"[mcp-wrapper: {outcome.error}]\n")
    if outcome.truncated:
        io.text("stdout", ("" if io.ends_with_newline else "\n")
                + "[mcp-wrapper: output truncated at %d bytes]\n" % cap)
    if outcome.timed_out:
        io.text("stderr", f"[mcp-wrapper: timed out after {timeout_s} s]\n")
    return outcome.exit_code


def _explain(loaded, words):
    answer = {"allowed": False, "command": words[0] if words else None, "argv": None,
              "rule": None, "reason": None, "detail": None}
    try:
        plan, _, timeout_s, cap, _, _ = _plan_words(loaded, words)
        checked = plan.held.audit()
        plan.close()
        answer.update(allowed=True, argv=plan.argv, rule=plan.rule, timeout_s=timeout_s,
                      output_cap_bytes=cap)
        if checked:
            answer["paths"] = checked
    except Refusal as refusal:
        answer.update(rule=refusal.rule, reason=refusal.reason, detail=refusal.detail)
    return answer


def _effective(loaded):
    try:
        loaded.validate()
    except policy.PolicyError as error:
        raise Refusal("policy_invalid", "policy/load", str(error))
    from mcp_infra_target.readonly import describe  # only mcp:policy needs it
    commands = {name: describe.command(command)
                for name, command in sorted(loaded.commands.items())}
    document = dict(loaded.document)
    document["_effective"] = {"version": VERSION, "policy_sha256": loaded.sha256,
                              "commands": commands}
    return document


def _reserved(request, loaded, word, rest, record):
    io = request.io
    record.update(decision="allowed", rule="reserved/" + word[4:])
    if word == "mcp:explain":
        answer = _explain(loaded, rest)
        record["explain"] = {k: answer[k] for k in ("allowed", "rule", "reason")}
        _write_json(io, answer)
        return 0
    if rest:
        raise Refusal("reserved_word_args", "request/reserved", f"{word} takes no arguments")
    if word == "mcp:policy":
        _write_json(io, _effective(loaded))
        return 0
    if word == "mcp:version":
        _write_json(io, {"name": NAME, "version": VERSION, "policy_sha256": loaded.sha256})
        return 0
    if word == "mcp:batch":
        from mcp_infra_target.readonly import (
            batch,  # threads and batch parsing: only this request needs them
        )
        limits = loaded.limits
        io.deadline = time.monotonic() + (limits["batch_stdin_timeout_s"]
                                          + limits["batch_timeout_s"] + loaded.kill_grace_s)
        entries = batch.parse(io.stdin(limits), limits["batch_max_commands"])
        results, summary = batch.run(entries, lambda text: _prepare(loaded, text), limits,
                                     loaded.kill_grace_s)
        record["batch"] = summary
        record["bytes"] = sum(len(r["stdout"]) + len(r["stderr"]) for r in results)
        _write_json(io, {"results": results})
        return 0
    if word == "mcp:session":
        if request.session is not None:
            raise Refusal("reserved_word_not_allowed_here", "request/reserved",
                          "a session cannot be opened inside a session")
        return _session(request, loaded, record)
    raise Refusal("unknown_reserved_word", "request/reserved", f"{word[:32]!r} is not a reserved word")


def _session(request, loaded, record):
    """Serve frames until the session ends; each one is a whole request of its own."""
    from mcp_infra_target.readonly import session
    ident = "%d.%d" % (os.getpid(), int(time.time()))
    record["session_id"] = ident

    def one(raw, data):
        inner = _Request(request.layout, request.policies, request.base, _Buffered(data), ident)
        code = inner.handle(raw)
        return code, inner.io.streams["stdout"], inner.io.streams["stderr"], inner.io.deadline

    return session.serve(one, loaded.limits, record)


def _serve(request, raw, record):
    if raw is None:
        raise Refusal("shell_request", "request/screen", "no command given: shells are not offered")
    record["request"] = audit.escape(raw.decode("utf-8", "backslashreplace"))
    text = screen.decode(raw)
    loaded = request.policies.get()
    record["policy_sha256"] = loaded.sha256
    request.io.deadline = request.start + loaded.timeout_s + loaded.kill_grace_s
    screen.check(text, loaded.limits["request_max_bytes"])
    trace, tokens = take_trace(tokenise.split(text, loaded.limits["max_tokens"]))
    if trace is not None:
        record["trace"] = trace
        if not tokens:
            raise Refusal("empty", "request/reserved", "nothing after the trace id")
    if tokens[0].startswith("mcp:"):
        return _reserved(request, loaded, tokens[0], tokens[1:], record)
    return _run_single(request.io, loaded, tokens, record)


class _Request:
    """One request through the pipeline, with where its output goes (`io`) and, inside a
    session, the session's id; `handle` turns every outcome into an exit code and a record."""

    def __init__(self, layout, policies, base, io, session=None):
        self.layout, self.policies, self.base, self.io, self.session = (
            layout, policies, base, io, session)
        self.start = None  # monotonic, when `handle` began

    def _say(self, refusal):
        """Emit the refusal line; a client that already left cannot change the exit code."""
        try:
            self.io.text("stderr", refusal.json_line() + "\n")
        except (OSError, ClientGone):
            pass
        return EXIT_REFUSED

    def handle(self, raw):
        start = self.start = time.monotonic()
        self.io.deadline = start + EARLY_WRITE_S
        record = dict(self.base, session_id=self.session)
        try:
            code = _serve(self, raw, record)
        except Refusal as refusal:
            record.update(decision="refused", rule=refusal.rule, reason=refusal.reason,
                          detail=refusal.detail)
            code = self._say(refusal)
        except ClientGone as gone:
            record["client_gone"] = gone.why
            code = EXIT_CLIENT_GONE
        except Exception as error:  # noqa: BLE001 - fail closed, but say so in the audit log
            refusal = Refusal("internal_error", "wrapper/internal", type(error).__name__)
            record.update(decision="error", rule=refusal.rule, reason=refusal.reason,
                          detail=repr(error)[:500])
            code = self._say(refusal)
        record["exit"] = code
        record["duration_ms"] = int((time.monotonic() - start) * 1000)
        audit.record(NAME, record, warning=record["decision"] != "allowed",
                     file_path=self.layout.audit_file)
        return code


def main(test_root: "str | None" = None) -> int:
    """Serve the request in SSH_ORIGINAL_COMMAND; returns the process exit code."""
    layout = Layout(test_root)
    base = {"event": NAME, "version": VERSION, "trace": None, "request": None,
            "decision": None, "rule": None, "reason": None, "bytes": 0}
    base.update(audit.client_fields(os.environ))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.chdir("/")
    request = _Request(layout, _PolicySource(layout), base, _Channel())
    flags = [(fd, clientio.set_nonblocking(fd)) for fd in (1, 2)]
    try:
        return request.handle(os.environb.get(b"SSH_ORIGINAL_COMMAND"))
    finally:
        for fd, saved in flags:
            clientio.restore(fd, saved)
