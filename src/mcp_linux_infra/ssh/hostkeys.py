"""Strict host keys from OpenSSH known_hosts files, re-read whenever a file changes.

A host is looked up the way OpenSSH writes it: `address`, or `[address]:port` off port 22
(the lab writes `[127.0.0.1]:2201`). Hashed entries work too. The files are the server's
own (settings.known_hosts, where `hosts trust` records keys) plus any UserKnownHostsFile
the inventory names for the host.
"""

import base64
import hashlib
import os
import threading
from pathlib import Path

import paramiko

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.ssh.errors import HostKeyChanged, HostKeyUnknown
from mcp_linux_infra.ssh.keyfile import Signature, signature

# known_hosts key names -> the host key algorithms that may present them.
_ALGORITHMS = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256")}


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint, as `ssh-keygen -l` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_id(host: Host) -> str:
    return host.address if host.port == 22 else f"[{host.address}]:{host.port}"


class KnownHosts:
    """The known_hosts files of every host; `verify` refuses unknown and changed keys."""

    def __init__(self, primary: Path, accept_new: bool = False):
        self.primary = Path(primary)
        self.accept_new = accept_new
        self._lock = threading.Lock()
        self._files: dict[Path, tuple[Signature | None, paramiko.HostKeys]] = {}

    def _load(self, path: Path) -> paramiko.HostKeys:
        sig = signature(path)
        cached = self._files.get(path)
        if cached is None or cached[0] != sig:
            keys = paramiko.HostKeys()
            if sig is not None:
                keys.load(str(path))
            cached = (sig, keys)
            self._files[path] = cached
        return cached[1]

    def files(self, host: Host) -> list[Path]:
        return list(dict.fromkeys([self.primary, *host.known_hosts_files]))

    def known(self, host: Host) -> dict[str, paramiko.PKey]:
        """Key name -> key for this host, across its files."""
        found: dict[str, paramiko.PKey] = {}
        with self._lock:
            for path in self.files(host):
                entry = self._load(path).lookup(host_id(host))
                if entry is not None:
                    for name in entry:
                        found.setdefault(name, entry[name])
        return found

    def algorithms(self, host: Host, offered: tuple[str, ...]) -> tuple[str, ...]:
        """Host key algorithms to negotiate: those of the known keys (all, if none is known),
        so the server shows a key we can check rather than one we have never seen."""
        names = self.known(host)
        if not names:
            return offered
        wanted = {alg for name in names for alg in _ALGORITHMS.get(name, (name,))}
        return tuple(a for a in offered if a in wanted) or offered

    def verify(self, host: Host, key: paramiko.PKey, trust_as: str | None = None) -> None:
        """Refuse a changed or unknown key; `trust_as`: the inventory host whose `hosts
        trust` records this one (a jump host's)."""
        trusted = trust_as or host.name
        known = self.known(host)
        name = key.get_name()
        if known.get(name) == key:
            return
        where = " or ".join(str(p) for p in self.files(host))
        if known:
            expected = ", ".join(f"{n} {fingerprint(k)}" for n, k in sorted(known.items()))
            raise HostKeyChanged(
                host.name,
                f"HOST KEY MISMATCH for {host_id(host)}: it presented {name} {fingerprint(key)} "
                f"but {where} expects {expected}. Refusing to connect (possible "
                "man-in-the-middle, or the host was reinstalled).",
                hint="an operator must verify the new key out of band, remove the old entry "
                     f"(ssh-keygen -R '{host_id(host)}' -f FILE), then run: "
                     f"mcp-linux-infra hosts trust {trusted}")
        if self.accept_new:
            self.add(host, key)
            return
        raise HostKeyUnknown(
            host.name,
            f"host key of {host_id(host)} is not known ({name} {fingerprint(key)}, "
            f"not in {where}). Refusing to connect.",
            hint=f"an operator can verify the fingerprint and run: "
                 f"mcp-linux-infra hosts trust {trusted}")

    def add(self, host: Host, key: paramiko.PKey) -> None:
        """Append the key to the primary file (created 0600 in a 0700 directory)."""
        with self._lock:
            self.primary.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.primary, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a") as out:
                out.write(f"{host_id(host)} {key.get_name()} {key.get_base64()}\n")
            self._files.pop(self.primary, None)
