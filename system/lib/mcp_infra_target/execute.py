"""Run one planned argv under supervision.

The child gets the policy's fixed environment, /dev/null as stdin, `/` as working
directory, no inherited descriptors but those of the checked paths it is given
(`pass_fds`; `filters` spell them back as the client typed them in its output), its own
session (so its whole process group can be signalled) and an RLIMIT_FSIZE of 0, soft and
hard, so a write that slipped past the policy
cannot grow any regular file (SIGXFSZ); a command whose spec says so also gets an
RLIMIT_DATA (memory_bytes), soft and hard. Output is streamed to a sink up to a byte cap; at the cap or at the
wall-clock deadline the group gets SIGTERM, then SIGKILL after a grace period. Whatever
happens, the group is SIGKILLed before the leader is reaped: the leader stays a zombie
until then, so its pid (the group id) cannot have been reused by another process.
"""

import errno
import os
import resource
import select
import selectors
import signal
import subprocess
import time

from .paths import trusted_executable

EXIT_TIMEOUT = 124
EXIT_NOT_STARTED = 127
READ_CHUNK = 65536
PRLIMIT = ("/usr/bin/prlimit", "/bin/prlimit")


class Outcome:
    """How a run ended; `exit_code` follows shell conventions (124 timeout, 128+N signal)."""

    def __init__(self):
        self.exit_code = None
        self.timed_out = False
        self.truncated = False
        self.output_bytes = 0
        self.duration_s = 0.0
        self.error = None


def _exited(pid):
    """Has `pid` exited? Checked without reaping it (WNOWAIT)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _wait_exit(pid, deadline):
    """Wait until `pid` exits (unreaped) or the deadline: on a pidfd where the kernel offers
    one (Linux 5.3+), which wakes at the exit itself; else by polling, briefly at first."""
    if _exited(pid):
        return True
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
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
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _signal_group(pid, signum):
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _spawn(argv, env, scratch_bytes, pass_fds=(), memory_bytes=None):
    """Start the child with RLIMIT_FSIZE `scratch_bytes` (0 unless its spec grants some) and,
    where its spec caps memory, RLIMIT_DATA `memory_bytes` (heap and private memory, not
    the files it maps), soft and hard: util-linux prlimit sets them on itself, then execs
    `argv`, so the command never runs with a limit it could raise, and no code runs between
    fork and exec in this (possibly threaded) process."""
    if not os.path.isfile(argv[0]) or not os.access(argv[0], os.X_OK):
        code = errno.EACCES if os.path.exists(argv[0]) else errno.ENOENT
        raise OSError(code, os.strerror(code))  # what exec would say, said before prlimit runs
    limiter = trusted_executable(PRLIMIT)
    if limiter is None:
        raise OSError(errno.ENOENT, "no trusted util-linux prlimit to set its limits")
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    size = scratch_bytes if hard == resource.RLIM_INFINITY else min(scratch_bytes, hard)
    limits = ["--fsize=%d:%d" % (size, size)]
    if memory_bytes is not None:
        hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
        data = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        limits.append(f"--data={data}:{data}")
    return subprocess.Popen(
        [limiter] + limits + ["--"] + list(argv), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd="/", close_fds=True,
        pass_fds=pass_fds, start_new_session=True, restore_signals=True)


def _pump(process, deadline, cap_bytes, sink, outcome, filters=None):
    """Copy output to `sink` until both pipes close, the cap is reached, or the deadline.
    `filters` (per stream: feed(chunk) and flush() -> bytes) rewrite it first; the cap
    counts what they give."""
    def deliver(stream, chunk):
        room = cap_bytes - outcome.output_bytes
        if len(chunk) > room:
            chunk = chunk[:room]
            outcome.truncated = True
        if chunk:
            outcome.output_bytes += len(chunk)
            sink(stream, chunk)
        return outcome.truncated

    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, "stdout")
        selector.register(process.stderr, selectors.EVENT_READ, "stderr")
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                outcome.timed_out = True
                break
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, READ_CHUNK)
                if not chunk:
                    selector.unregister(key.fileobj)
                    if filters and deliver(key.data, filters[key.data].flush()):
                        return
                    continue
                if deliver(key.data, filters[key.data].feed(chunk) if filters else chunk):
                    return
    if filters and outcome.timed_out:
        for stream in ("stdout", "stderr"):
            if deliver(stream, filters[stream].flush()):
                return


def run(argv, env, timeout_s, cap_bytes, sink, kill_grace_s=1.0, scratch_bytes=0, pass_fds=(),
        filters=None, memory_bytes=None):
    """Run `argv`; `sink(stream, chunk)` gets output ("stdout"/"stderr", bytes)."""
    outcome = Outcome()
    start = time.monotonic()
    deadline = start + timeout_s
    try:
        process = _spawn(argv, env, scratch_bytes, pass_fds, memory_bytes)
    except OSError as error:
        outcome.error = f"{argv[0]}: {error.strerror}"
        outcome.exit_code = EXIT_NOT_STARTED
        return outcome
    try:
        _pump(process, deadline, cap_bytes, sink, outcome, filters)
        if not (outcome.timed_out or outcome.truncated):
            outcome.timed_out = not _wait_exit(process.pid, deadline)
        if outcome.timed_out or outcome.truncated:
            stopped_alone = _exited(process.pid)
            _signal_group(process.pid, signal.SIGTERM)
            _wait_exit(process.pid, time.monotonic() + kill_grace_s)
    finally:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()
        process.stderr.close()
        outcome.duration_s = time.monotonic() - start
    code = process.returncode
    if outcome.timed_out:
        outcome.exit_code = EXIT_TIMEOUT
    elif outcome.truncated and not stopped_alone:
        outcome.exit_code = 0
    else:
        outcome.exit_code = code if code >= 0 else 128 - code
    return outcome
