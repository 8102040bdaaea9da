"""Client private keys, re-read when their file changes (rotation needs no restart)."""

import os
import threading
from pathlib import Path

import paramiko

# What identifies one version of a file: replaced (new inode) or rewritten (mtime, size).
Signature = tuple[int, int, int, int]


def signature(path: Path) -> Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


class KeyFile:
    """One private key file; `load` returns the key and the file version it came from."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cached: tuple[Signature, paramiko.PKey] | None = None

    def changed_since(self, seen: Signature | None) -> bool:
        return signature(self.path) != seen

    def load(self) -> tuple[paramiko.PKey, Signature]:
        """The key as the file is now; raises OSError or paramiko.SSHException if unusable."""
        with self._lock:
            current = signature(self.path)
            if current is None:
                raise FileNotFoundError(f"key file {self.path} does not exist")
            if self._cached is None or self._cached[0] != current:
                self._cached = (current, paramiko.PKey.from_path(self.path))
            return self._cached[1], self._cached[0]
