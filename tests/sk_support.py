"""A simulated FIDO security key that stock ssh-keygen signs with: tests/sk_provider.c, an
OpenSSH security-key provider (SSH_SK_PROVIDER) holding ed25519 credentials in software,
built here with the system's C compiler and libcrypto (scripts/setup.sh installs both).

    library = build_provider(directory)
    key = new_key(library, directory / "token")      # an sk-ssh-ed25519@openssh.com key
    env = {"SSH_SK_PROVIDER": str(library)}          # what `ssh-keygen -Y sign -f key` needs
"""

import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).with_name("sk_provider.c")


def build_provider(directory: Path) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.fail("no C compiler to build the simulated security key: run scripts/setup.sh",
                    pytrace=False)
    library = directory / "libsk-test.so"
    done = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(library),
                           str(SOURCE), "-lcrypto"], capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0, f"building {SOURCE.name} failed (libssl-dev?):\n{done.stderr}"
    return library


def new_key(library: Path, key: Path) -> Path:
    """A new sk-ed25519 key (application ssh:) on the simulated security key; its handle in
    `key`, its public line in `key`.pub."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519-sk", "-w", str(library), "-N", "",
                    "-C", key.name, "-f", str(key)], check=True, capture_output=True,
                   timeout=60, env={"PATH": "/usr/bin:/bin", "SSH_SK_PROVIDER": str(library)})
    return key
