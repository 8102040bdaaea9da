"""Fixtures shared by every test directory: an isolated lab's environment, the action tier's
keys and test root, the action estate, and anyio's backend. (Helpers that are not fixtures
are support modules: paths_support, lab_support, ...)"""

import os

import pytest


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
def action_estate(tmp_path, keys, root):
    """One host, target-1, whose action tier is the real one in `root` (approval_support),
    and the approval store of its settings, with its operators registry (alice, bob)."""
    from approval_support import make_action_estate

    from mcp_linux_infra.approvals.store import open_approvals
    from mcp_linux_infra.operators.registry import open_registry
    estate = make_action_estate(tmp_path, keys, root)
    operators = open_registry(estate.settings)
    estate.store = open_approvals(estate.settings, estate.audit(), operators)
    yield estate
    estate.store.close()
    operators.close()
    estate.close()


@pytest.fixture
def anyio_backend():
    """The MCP SDK runs on asyncio; anyio's pytest plugin asks which backend to use."""
    return "asyncio"


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster for the session (pg_support); skipped where Debian's
    postgresql package is not installed (scripts/setup.sh installs it)."""
    from pg_support import Cluster, bin_dir
    found = bin_dir()
    if found is None:
        pytest.skip("no PostgreSQL server: scripts/setup.sh installs Debian's postgresql")
    cluster = Cluster(found)
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    """A store test on each backend: None (SQLite files in the test's state directory), then
    a fresh database of the session's PostgreSQL cluster."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres").new_database()
