"""The one bootstrap: one file behind the three executables, each picking its entry by name,
with one test-root rule for all three (refused under sshd or sudo, when not absolute, and in
an installed copy) and one library check (the whole path, symlinks included, and the package)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from mcp_infra_target.core import bootstrap
from wrapper_support import REPO, make_root, remove_root

BIN = REPO / "system" / "bin"
SOURCE = REPO / "system" / "lib" / "mcp_infra_target" / "core" / "bootstrap.py"
ENTRIES = ["mcp-wrapper", "pra-exec", "pra-run"]


@pytest.fixture
def root():
    path = make_root()
    yield path
    remove_root(path)


def start(name, env, argv0=None):
    return subprocess.run([str(argv0 or BIN / name)], input=b"", capture_output=True, env=env,
                          timeout=30, check=False, cwd="/")


def refusal(done):
    assert done.returncode == 126, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])["mcp_refusal"]


def test_the_three_executables_are_one_file():
    assert sorted(p.name for p in BIN.iterdir()) == ENTRIES
    for name in ENTRIES:
        assert (BIN / name).resolve() == SOURCE.resolve()
    assert sorted(bootstrap.ENTRIES) == ENTRIES
    assert {bootstrap.TARGET_PATHS[name] for name in ENTRIES} == {
        "/usr/local/libexec/mcp-infra/mcp-wrapper", "/usr/local/libexec/mcp-infra/pra-exec",
        "/usr/local/sbin/pra-run"}


@pytest.mark.parametrize("name", ENTRIES)
@pytest.mark.parametrize("variable", [
    pytest.param("SSH_CONNECTION", id="sshd-connection"),
    pytest.param("SSH_CLIENT", id="sshd-client"),
    pytest.param("SUDO_USER", id="sudo"),
])
def test_the_test_root_is_refused_under_sshd_or_sudo(root, name, variable):
    env = {"PATH": "/usr/bin:/bin", "MCP_INFRA_TEST_ROOT": str(root), variable: "x",
           "SSH_ORIGINAL_COMMAND": "mcp:version" if name == "mcp-wrapper" else "list"}
    done = start(name, env)
    assert refusal(done) == {"reason": "test_root_refused", "rule": "bootstrap/test_root",
                             "detail": "test override refused here", "command": name}
    assert done.stdout == b""


@pytest.mark.parametrize("name", ENTRIES)
def test_a_relative_test_root_is_refused(root, name):
    env = {"PATH": "/usr/bin:/bin", "MCP_INFRA_TEST_ROOT": os.path.relpath(root, "/")}
    assert refusal(start(name, env))["reason"] == "test_root_refused"


def test_an_unknown_name_runs_nothing(root, tmp_path):
    other = tmp_path / "other-name"
    other.symlink_to(SOURCE)
    done = start(None, {"PATH": "/usr/bin:/bin", "MCP_INFRA_TEST_ROOT": str(root)}, other)
    assert refusal(done)["reason"] == "internal_error" and done.stdout == b""


def test_the_library_path_is_checked_through_its_symlinks(root):
    """The test root's library is a symlink: its target's path must pass the rule too (a
    symlinked directory in a directory others may write is refused)."""
    (REPO / "build").mkdir(exist_ok=True)
    holder = Path(tempfile.mkdtemp(prefix="bootstrap-", dir=REPO / "build"))
    try:
        (holder / "open").mkdir()
        (holder / "open").chmod(0o777)
        (holder / "open/lib").symlink_to(REPO / "system" / "lib")
        (root / "usr/local/lib/mcp-infra").unlink()
        (root / "usr/local/lib/mcp-infra").symlink_to(holder / "open/lib")
        env = {"PATH": "/usr/bin:/bin", "MCP_INFRA_TEST_ROOT": str(root),
               "SSH_ORIGINAL_COMMAND": "mcp:version"}
        answer = refusal(start("mcp-wrapper", env))
        assert answer["reason"] == "library_untrusted" and str(holder / "open") in answer["detail"]
        (holder / "open").chmod(0o755)
        assert start("mcp-wrapper", env).returncode == 0
    finally:
        shutil.rmtree(holder)


def test_a_symlink_inside_the_package_is_refused(root):
    (REPO / "build").mkdir(exist_ok=True)
    copy = Path(tempfile.mkdtemp(prefix="bootstrap-lib-", dir=REPO / "build"))
    try:
        shutil.copytree(REPO / "system/lib/mcp_infra_target", copy / "mcp_infra_target",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (copy / "mcp_infra_target/readonly/extra.py").symlink_to("/etc/hostname")
        (root / "usr/local/lib/mcp-infra").unlink()
        (root / "usr/local/lib/mcp-infra").symlink_to(copy)
        env = {"PATH": "/usr/bin:/bin", "MCP_INFRA_TEST_ROOT": str(root),
               "SSH_ORIGINAL_COMMAND": "mcp:version"}
        answer = refusal(start("mcp-wrapper", env))
        assert answer["reason"] == "library_untrusted" and "extra.py" in answer["detail"]
    finally:
        shutil.rmtree(copy)
