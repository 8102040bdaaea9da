"""Loopback ports for tests: the kernel picks a free one, so nothing else on the machine is
assumed absent."""

import socket


def free_port() -> int:
    """A port nothing listens on right now (bound once to port 0, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
