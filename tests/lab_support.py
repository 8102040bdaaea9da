"""Whether real lab targets can be booted here.

Lab tests need root, systemd-nspawn and debootstrap. Outside CI they are skipped with the
reason when that is missing; with CI=true a missing lab is a failure, never a silent skip.
"""

import os
import shutil

import pytest


def lab_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root"
    missing = [t for t in ("systemd-nspawn", "debootstrap", "ssh", "ssh-keygen", "systemctl")
               if shutil.which(t) is None]
    if missing:
        return f"the lab needs {', '.join(missing)} (run scripts/setup.sh)"
    return None


def require_lab() -> None:
    reason = lab_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but the lab cannot start: {reason}", pytrace=False)
    pytest.skip(reason)
