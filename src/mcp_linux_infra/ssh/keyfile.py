"""A tier's client key, re-read when its files change (rotation needs no restart).

The setting names either a private key file, read as is or, when passphrase-protected, with
the passphrase from a passphrase file (its own setting; a regular file of ours that no one
else may read) or else from ssh-agent; or a public key (`.pub`): then the agent's key equal
to it signs, and the private key need not be on this machine at all. The agent key is always
the one whose public key is the configured one, never another key the agent holds, so the
server cannot log in with an operator's personal key by accident. A passphrase is never an
argument or an environment value: those leak to `ps`, logs and children.
"""

import base64
import os
import socket
import stat
import threading
from pathlib import Path

import paramiko

from mcp_linux_infra.ssh.errors import (
    AgentKeyMissing,
    AgentUnavailable,
    AuthFailed,
    KeyPassphrase,
    SSHError,
)

# What identifies one version of a file: replaced (new inode) or rewritten (mtime, size).
Signature = tuple[int, int, int, int]
AGENT_SOCKET = "SSH_AUTH_SOCK"


def signature(path: Path) -> Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


class KeyUnusable(Exception):
    """The key cannot be had; `error` is the SSHError class to raise for a host."""

    def __init__(self, error: type[SSHError], message: str, hint: str | None = None):
        super().__init__(message)
        self.error, self.hint = error, hint

    def for_host(self, host: str) -> SSHError:
        return self.error(host, str(self), self.hint)


def public_blob(path: Path) -> bytes:
    """The key blob of an OpenSSH public key line (`TYPE BASE64 [COMMENT]`)."""
    try:
        fields = path.read_text().split()
        return base64.b64decode(fields[1], validate=True)
    except (IndexError, ValueError, UnicodeDecodeError):
        raise KeyUnusable(AuthFailed, f"{path} is not an OpenSSH public key line") from None


def read_passphrase(path: Path) -> bytes:
    """The first line of a passphrase file that only this user may read or change."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise KeyUnusable(KeyPassphrase, f"passphrase file {path} is not a regular file")
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise KeyUnusable(KeyPassphrase,
                              f"passphrase file {path} is mode {stat.S_IMODE(st.st_mode):04o}, "
                              f"owner uid {st.st_uid}: refusing a passphrase others may read",
                              hint=f"chown to this user and chmod 600 {path}")
        data = path.read_bytes()
    except OSError as exc:
        raise KeyUnusable(KeyPassphrase, f"cannot read passphrase file {path}: "
                          f"{exc.strerror or exc}") from None
    passphrase = data.split(b"\n", 1)[0].rstrip(b"\r")
    if not passphrase:
        raise KeyUnusable(KeyPassphrase, f"passphrase file {path} is empty")
    return passphrase


def agent_key(pub: Path, blob: bytes) -> paramiko.AgentKey:
    """The agent's key whose public blob is `blob`: a fresh look each time, so a key added,
    removed or an agent locked since is seen at the next connection."""
    if not os.environ.get(AGENT_SOCKET):
        raise KeyUnusable(AgentUnavailable, f"{pub} asks for ssh-agent, but {AGENT_SOCKET} "
                          "is not set", hint="start the server where the agent's "
                          f"{AGENT_SOCKET} is set, or configure a private key file")
    address = os.environ[AGENT_SOCKET]
    try:  # paramiko.Agent says nothing when it cannot connect: it just holds no key
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(address)
        agent = paramiko.Agent()
    except (OSError, paramiko.SSHException) as exc:
        raise KeyUnusable(AgentUnavailable, f"cannot reach ssh-agent at {address}: "
                          f"{getattr(exc, 'strerror', None) or exc}",
                          hint="is the agent running?") from None
    keys = agent.get_keys()
    for key in keys:
        if key.asbytes() == blob:
            return key
    agent.close()
    raise KeyUnusable(AgentKeyMissing, f"ssh-agent holds no key equal to {pub} "
                      f"({len(keys)} other key(s); a locked agent lists none)",
                      hint=f"ssh-add the private key of {pub}, or unlock the agent (ssh-add -X)")


class KeyFile:
    """One tier's key; `load` returns the key and the version of its files it came from."""

    def __init__(self, path: Path, passphrase_file: Path | None = None,
                 setting: str = "the key setting"):
        self.path = Path(path)
        self.passphrase_file = passphrase_file
        self.setting = setting
        self.agent_only = self.path.suffix == ".pub"
        self._lock = threading.Lock()
        self._cached: tuple[tuple, paramiko.PKey] | None = None

    @property
    def label(self) -> str:
        return f"{self.path} (ssh-agent)" if self.agent_only else str(self.path)

    def _signature(self) -> tuple:
        files = [self.path] + ([self.passphrase_file] if self.passphrase_file else [])
        return tuple(signature(p) for p in files)

    def changed_since(self, seen: tuple | None) -> bool:
        return self._signature() != seen

    def load(self) -> tuple[paramiko.PKey, tuple]:
        """The key as the files are now; KeyUnusable (with the SSHError to raise) if not."""
        with self._lock:
            current = self._signature()
            if current[0] is None:
                raise KeyUnusable(AuthFailed, f"key file {self.path} does not exist",
                                  hint="run: mcp-linux-infra keys init")
            if self.agent_only:  # the agent's state is not a file: asked every time
                return agent_key(self.path, public_blob(self.path)), current
            if self._cached is not None and self._cached[0] == current:
                return self._cached[1], current
            key = self._read()
            if not isinstance(key, paramiko.AgentKey):  # the agent is asked every time
                self._cached = (current, key)
            return key, current

    def _read(self) -> paramiko.PKey:
        try:
            try:
                return paramiko.PKey.from_path(self.path)
            except TypeError:  # passphrase-protected (cryptography asks for a password)
                pass
            if self.passphrase_file is not None:
                try:
                    return paramiko.PKey.from_path(self.path,
                                                   read_passphrase(self.passphrase_file))
                except (ValueError, TypeError):
                    raise KeyUnusable(KeyPassphrase, f"the passphrase in "
                                      f"{self.passphrase_file} does not open {self.path}"
                                      ) from None
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise KeyUnusable(AuthFailed, f"cannot load the key {self.path}: {exc}",
                              hint="run: mcp-linux-infra keys init") from None
        pub = self.path.with_name(self.path.name + ".pub")
        if os.environ.get(AGENT_SOCKET) and pub.exists():
            try:
                return agent_key(pub, public_blob(pub))
            except KeyUnusable as exc:
                raise KeyUnusable(KeyPassphrase, f"{self.path} is passphrase-protected and "
                                  f"{exc}", hint=exc.hint) from None
        raise KeyUnusable(KeyPassphrase, f"{self.path} is passphrase-protected",
                          hint=f"name a passphrase file in {self.setting}_PASSPHRASE_FILE, or "
                               f"ssh-add it (the agent key equal to {pub.name} is used)")
