"""The three key pairs: two client keys for the tiers, one operator key that signs approvals."""

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mcp_linux_infra.errors import UserError
from mcp_linux_infra.programs import require


@dataclass(frozen=True)
class KeySpec:
    name: str
    comment: str


KEYS = (
    KeySpec("mcp-reader", "mcp-linux-infra read-only diagnostics (target user mcp-reader)"),
    KeySpec("pra-exec", "mcp-linux-infra approved actions (target user pra-runner)"),
    KeySpec("operator", "mcp-linux-infra operator approval signing (human only, never on a target)"),
)


@dataclass(frozen=True)
class KeyResult:
    name: str
    path: Path
    status: str  # "created", "kept", "replaced"
    fingerprint: str


def _fingerprint(ssh_keygen: str, pub: Path) -> str:
    out = subprocess.run([ssh_keygen, "-l", "-f", str(pub)], capture_output=True, text=True,
                         check=True, timeout=30)
    return out.stdout.split()[1]


def _generate(ssh_keygen: str, spec: KeySpec, directory: Path, passphrase: str | None) -> Path:
    """Generate in a private temp dir beside the target, so a failure leaves nothing half-made."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", dir=directory))
    try:
        key = tmp / f"{spec.name}.key"
        argv = [ssh_keygen, "-q", "-t", "ed25519", "-C", spec.comment, "-f", str(key)]
        if passphrase is not None:
            argv += ["-N", passphrase]
        subprocess.run(argv, check=True, timeout=300, stdout=subprocess.DEVNULL)
        os.chmod(key, 0o600)
        os.chmod(key.with_name(key.name + ".pub"), 0o644)
        return tmp
    except BaseException:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
        raise


def init_keys(directory: Path, force: bool = False, ask_operator_passphrase: bool = False
              ) -> list[KeyResult]:
    """Create missing key pairs; never overwrite unless forced, and then keep the old as retired."""
    ssh_keygen = require("ssh-keygen")["ssh-keygen"]
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    plan = []
    for spec in KEYS:
        key = directory / f"{spec.name}.key"
        pub = directory / f"{spec.name}.key.pub"
        if not force and pub.exists() and not key.exists():
            raise UserError(
                f"{pub} exists without its private key {key}",
                hint="move the stray .pub away, or pass --force to replace it",
            )
        plan.append((spec, key, pub))

    results = []
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for spec, key, pub in plan:
        if key.exists() and not force:
            if not pub.exists():
                derived = subprocess.run([ssh_keygen, "-y", "-f", str(key)], capture_output=True,
                                         text=True, check=True, timeout=60).stdout
                pub.write_text(derived.strip() + f" {spec.comment}\n")
            results.append(KeyResult(spec.name, key, "kept", _fingerprint(ssh_keygen, pub)))
            continue
        existed = key.exists()
        passphrase = None if (ask_operator_passphrase and spec.name == "operator") else ""
        tmp = _generate(ssh_keygen, spec, directory, passphrase)
        if existed:
            for old in (key, pub):
                if old.exists():
                    old.rename(old.with_name(f"{old.name}.retired-{stamp}"))
        (tmp / key.name).rename(key)
        (tmp / pub.name).rename(pub)
        tmp.rmdir()
        results.append(KeyResult(spec.name, key, "replaced" if existed else "created",
                                 _fingerprint(ssh_keygen, pub)))
    return results
