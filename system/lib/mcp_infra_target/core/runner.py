"""The one supervised process runner of both tiers: a read-only command (readonly.wrapper,
readonly.batch) and an action's step (actions.steps).

The child gets the caller's fixed environment, /dev/null as stdin, its working directory, no
inherited descriptors but those it is given (`pass_fds`; `filters` spell them back in its
output), its own session (so its whole process group can be signalled) and, where `limits`
are given, RLIMIT_FSIZE and optionally RLIMIT_DATA, soft and hard, set by util-linux prlimit,
which then execs the command, so it never runs with a limit it could raise and no code runs
between fork and exec in this (possibly threaded) process. It may run as another user.

Output goes to a sink as it comes, under one of two caps: `cap_bytes` counts both streams
together and stops the command when reached (the read tier: its answer is the stream);
`stream_cap_bytes` keeps at most that much of each stream and lets the command finish (an
action's step: its exit status decides). At the deadline, or at the shared cap, the group
gets SIGTERM, then SIGKILL after `kill_grace_s` (at once when it is 0). With `settle_s`, once
the leader has exited (seen on a pidfd where the kernel offers one, Linux 5.3+) its output
is awaited at most that long more: a daemon a step started may hold the pipes forever.
Whatever happens, the group is SIGKILLed before the leader is reaped: the leader stays a
zombie until then, so its pid (the group id) cannot have been reused by another process.
"""
import errno
import os
import resource
import select
import selectors
import signal
import subprocess
import time

from mcp_infra_target.core.layout import trusted_executable

EXIT_TIMEOUT = 124
EXIT_NOT_STARTED = 127
READ_CHUNK = 65536
PRLIMIT = ("/usr/bin/prlimit", "/bin/prlimit")
POLL_S = 0.05  # how often the leader is looked at without a pidfd


class Outcome:
    """How a run ended: `returncode` as the kernel said (negative: killed by that signal,
    None: never started), `exit_code` by shell conventions (124 timeout, 128+N signal, 127
    not started, 0 when stopped at the shared cap)."""

    def __init__(self) -> None:
        self.returncode: int | None = None
        self.exit_code: int | None = None
        self.timed_out = False
        self.truncated = False
        self.output_bytes = 0
        self.duration_s = 0.0
        self.error: str | None = None


def _exited(pid: int) -> bool:
    """Has `pid` exited? Checked without reaping it (WNOWAIT)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _pidfd(pid: int) -> "int | None":
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _wait_exit(pid: int, deadline: float, pidfd: "int | None") -> bool:
    """Wait until `pid` exits (unreaped) or the deadline: on its pidfd, which wakes at the
    exit itself; else by polling, briefly at first."""
    delay = 0.0005
    while not _exited(pid):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if pidfd is not None:
            select.select([pidfd], [], [], remaining)
        else:
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.005)
    return True


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _limited(argv: list[str], limits: dict) -> list[str]:
    """`argv` behind util-linux prlimit setting RLIMIT_FSIZE `limits["fsize"]` and, where
    given, RLIMIT_DATA `limits["data"]` (heap and private memory, not the files it maps)."""
    if not os.path.isfile(argv[0]) or not os.access(argv[0], os.X_OK):
        code = errno.EACCES if os.path.exists(argv[0]) else errno.ENOENT
        raise OSError(code, os.strerror(code))  # what exec would say, said before prlimit runs
    limiter = trusted_executable(PRLIMIT)
    if limiter is None:
        raise OSError(errno.ENOENT, "no trusted util-linux prlimit to set its limits")
    options = []
    for option, name, value in (("--fsize", "RLIMIT_FSIZE", limits["fsize"]),
                                ("--data", "RLIMIT_DATA", limits.get("data"))):
        if value is None:
            continue
        hard = resource.getrlimit(getattr(resource, name))[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        options.append("%s=%d:%d" % (option, value, value))
    return [limiter] + options + ["--"] + list(argv)


class _Pump:
    """Copies the child's output to the sink under the run's cap until both pipes close, the
    deadline passes, the shared cap is reached, or (with `settle_s`) the leader has exited
    and its pipes stayed open that long."""

    def __init__(self, process, sink, outcome: Outcome, cap_bytes: "int | None",
                 stream_cap_bytes: "int | None", filters) -> None:
        self.process, self.sink, self.outcome = process, sink, outcome
        self.cap_bytes, self.stream_cap_bytes, self.filters = cap_bytes, stream_cap_bytes, filters
        self.taken = {"stdout": 0, "stderr": 0}

    def deliver(self, stream: str, chunk: bytes) -> bool:
        """Pass `chunk` on within the cap; True once the shared cap stops the run."""
        outcome = self.outcome
        if self.stream_cap_bytes is not None:
            room = self.stream_cap_bytes - self.taken[stream]
        else:
            room = self.cap_bytes - outcome.output_bytes
        if len(chunk) > room:
            chunk = chunk[:max(room, 0)]
            outcome.truncated = True
        if chunk:
            self.taken[stream] += len(chunk)
            outcome.output_bytes += len(chunk)
            self.sink(stream, chunk)
        return outcome.truncated and self.stream_cap_bytes is None

    def run(self, deadline: float, settle_s: "float | None", pidfd: "int | None") -> bool:
        """Returns True when it stopped at the shared cap."""
        process, filters = self.process, self.filters
        settle = settle_s is not None
        leader_gone = False
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ, "stdout")
            selector.register(process.stderr, selectors.EVENT_READ, "stderr")
            open_pipes = 2
            if settle and pidfd is not None:
                selector.register(pidfd, selectors.EVENT_READ, None)
            while open_pipes:
                now = time.monotonic()
                if settle and not leader_gone and _exited(process.pid):
                    leader_gone = True
                    if pidfd is not None:
                        selector.unregister(pidfd)
                    deadline = min(deadline, now + settle_s)
                if now >= deadline:
                    self.outcome.timed_out = not leader_gone
                    break
                wait = deadline - now
                if settle and not leader_gone and pidfd is None:
                    wait = min(wait, POLL_S)
                for key, _ in selector.select(wait):
                    if key.data is None:
                        continue  # the leader exited: taken into account on the next turn
                    chunk = os.read(key.fd, READ_CHUNK)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        open_pipes -= 1
                        if filters and self.deliver(key.data, filters[key.data].flush()):
                            return True
                        continue
                    if self.deliver(key.data, filters[key.data].feed(chunk) if filters else chunk):
                        return True
        if filters and self.outcome.timed_out:
            for stream in ("stdout", "stderr"):
                if self.deliver(stream, filters[stream].flush()):
                    return True
        return False


def run(argv: list[str], env: dict[str, str], timeout_s: float, sink, *,
        cap_bytes: "int | None" = None, stream_cap_bytes: "int | None" = None,
        kill_grace_s: float = 1.0, settle_s: "float | None" = None, limits: "dict | None" = None,
        pass_fds: tuple = (), filters=None, cwd: str = "/", user: "int | None" = None,
        group: "int | None" = None, extra_groups: "list | None" = None,
        umask: int = -1) -> Outcome:
    """Run `argv`; `sink(stream, chunk)` gets output ("stdout"/"stderr", bytes). Exactly one
    of `cap_bytes` (both streams, stops the run) and `stream_cap_bytes` (each stream, the
    run goes on) is given."""
    outcome = Outcome()
    start = time.monotonic()
    deadline = start + timeout_s
    try:
        command = list(argv) if limits is None else _limited(argv, limits)
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=cwd, close_fds=True, pass_fds=pass_fds, start_new_session=True,
            restore_signals=True, user=user, group=group, extra_groups=extra_groups,
            umask=umask)
    except (OSError, subprocess.SubprocessError) as error:
        outcome.error = f"{argv[0]}: {getattr(error, 'strerror', None) or error}"
        outcome.exit_code = EXIT_NOT_STARTED
        outcome.duration_s = time.monotonic() - start
        return outcome
    pidfd = _pidfd(process.pid)
    stopped_alone = False
    try:
        capped = _Pump(process, sink, outcome, cap_bytes, stream_cap_bytes, filters).run(
            deadline, settle_s, pidfd)
        if not (outcome.timed_out or capped):
            outcome.timed_out = not _wait_exit(process.pid, deadline, pidfd)
        if outcome.timed_out or capped:
            stopped_alone = _exited(process.pid)
            if kill_grace_s > 0:
                _signal_group(process.pid, signal.SIGTERM)
                _wait_exit(process.pid, time.monotonic() + kill_grace_s, pidfd)
    finally:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()
        process.stderr.close()
        if pidfd is not None:
            os.close(pidfd)
        outcome.duration_s = time.monotonic() - start
    code = outcome.returncode = process.returncode
    if outcome.timed_out:
        outcome.exit_code = EXIT_TIMEOUT
    elif capped and not stopped_alone:
        outcome.exit_code = 0
    else:
        outcome.exit_code = code if code >= 0 else 128 - code
    return outcome
