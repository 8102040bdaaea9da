"""Shared test plumbing: where the repo is, and whether real lab targets can be booted here.

Lab tests need root, systemd-nspawn and debootstrap. Outside CI they are skipped with the
reason when that is missing; with CI=true a missing lab is a failure, never a silent skip.
"""

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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


@pytest.fixture
def lab_env(tmp_path):
    """Environment for an isolated lab instance: own directory, names and ports."""
    def make(prefix: str, port_base: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "LINUX_MCP_LAB_DIR": str(tmp_path / "lab"),
            "LINUX_MCP_LAB_INVENTORY": str(tmp_path / "inventory.ini"),
            "LINUX_MCP_LAB_NAME_PREFIX": prefix,
            "LINUX_MCP_LAB_PORT_BASE": str(port_base),
        })
        return env
    return make


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    """Real ssh-keygen key pairs for the action tier, made once per session."""
    from pra_support import Keys
    return Keys(tmp_path_factory.mktemp("pra-keys"))


@pytest.fixture
def root(keys):
    """A fresh action-tier test root (MCP_INFRA_TEST_ROOT) per test."""
    from pra_support import TestRoot
    test_root = TestRoot(keys)
    yield test_root
    test_root.cleanup()


@pytest.fixture
def anyio_backend():
    """The MCP SDK runs on asyncio; anyio's pytest plugin asks which backend to use."""
    return "asyncio"
