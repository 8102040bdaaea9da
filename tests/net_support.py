"""Loopback ports for tests: the kernel picks a free one, so nothing else on the machine is
assumed absent; and waiting for a process of the test's own to listen on one."""

import socket
import subprocess
import time

import pytest


def free_port(bind: str = "127.0.0.1") -> int:
    """A port nothing listens on right now on every address `bind` resolves to (localhost
    may be 127.0.0.1 and ::1): bound once to port 0, then released."""
    infos = socket.getaddrinfo(bind, 0, type=socket.SOCK_STREAM)
    while True:
        with socket.socket(infos[0][0]) as first:
            first.bind(infos[0][4][:2])
            port = first.getsockname()[1]
            try:
                for family, _, _, _, address in infos[1:]:
                    with socket.socket(family) as other:
                        other.bind((address[0], port))
            except OSError:
                continue
            return port


def wait_listening(proc: subprocess.Popen, address: str, port: int,
                   timeout: float = 60.0) -> None:
    """Return once address:port accepts a connection; fail with the process's stderr if it
    exits first, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            try:  # not listening yet: wait a little for the process, which must not exit
                proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
            else:
                stderr = proc.stderr.read() if proc.stderr else ""
                pytest.fail(f"{proc.args[0]} exited {proc.returncode}: {stderr!r}")
            assert time.monotonic() < deadline, f"nothing listened on {port} within {timeout} s"
