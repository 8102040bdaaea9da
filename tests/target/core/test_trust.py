"""What the wrapper trusts before it runs anything: the whole path of an executable (every
directory walked through, every symlink followed and its target's path) is root's alone, and
the file size limit of a command is hard as well as soft, so it cannot raise it."""

import os
import pwd
import random
import shutil
import tempfile
from pathlib import Path

import pytest
from mcp_infra_target.core import bootstrap
from mcp_infra_target.core.layout import trusted_executable
from wrapper_support import (
    make_root,
    mini_policy,
    refusal_of,
    remove_root,
    run_wrapper,
    unprivileged_user,
)

pytestmark = pytest.mark.skipif(unprivileged_user() is None,
                                reason="needs root: root-owned trees, chown, a switch to nobody")


def unused_uid() -> int:
    """A uid no account has (files here only; nothing runs as it)."""
    used = {entry.pw_uid for entry in pwd.getpwall()}
    return random.choice([uid for uid in range(200000, 300000) if uid not in used])


@pytest.fixture
def tree():
    """A root-owned 0755 directory, below directories that are root's (/tmp is sticky)."""
    base = Path(tempfile.mkdtemp(prefix="mcp-trust-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


def tool(directory: Path, name: str = "tool") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\necho ran\n")
    path.chmod(0o755)
    return path


def build(base: Path, layout: str, stranger: int) -> Path:
    """Each layout returns the path the policy would name."""
    good = tool(base / "good")
    for directory in (base / "good",):
        directory.chmod(0o755)
    if layout == "plain":
        return good
    if layout == "file-group-writable":
        good.chmod(0o775)
        return good
    if layout == "parent-group-writable":
        (base / "good").chmod(0o775)
        return good
    if layout == "parent-of-another-owner":
        os.chown(base / "good", stranger, 0)
        return good
    if layout == "symlink-chain":
        (base / "links").mkdir(mode=0o755)
        (base / "links/second").symlink_to("../good/tool")
        (base / "links/first").symlink_to(base / "links/second")
        return base / "links/first"
    if layout == "symlink-in-a-writable-directory":
        (base / "open").mkdir()
        (base / "open").chmod(0o777)
        (base / "open/tool").symlink_to(good)
        return base / "open/tool"
    if layout == "symlink-of-another-owner":
        (base / "links").mkdir(mode=0o755)
        (base / "links/tool").symlink_to(good)
        os.lchown(base / "links/tool", stranger, 0)
        return base / "links/tool"
    if layout == "symlink-to-a-directory-of-another-owner":
        theirs = tool(base / "theirs")
        theirs.parent.chmod(0o755)
        os.chown(theirs.parent, stranger, 0)
        (base / "links").mkdir(mode=0o755)
        (base / "links/tool").symlink_to(theirs)
        return base / "links/tool"
    if layout == "symlinked-directory-in-a-writable-directory":
        (base / "open").mkdir()
        (base / "open").chmod(0o775)
        (base / "open/bin").symlink_to(base / "good")
        return base / "open/bin/tool"
    if layout == "sticky-directory-of-root":
        (base / "sticky").mkdir()
        (base / "sticky").chmod(0o1777)
        return tool(base / "sticky")
    if layout == "sticky-directory-of-another-owner":
        (base / "sticky").mkdir()
        (base / "sticky").chmod(0o1777)
        path = tool(base / "sticky")
        os.chown(base / "sticky", stranger, 0)
        return path
    if layout == "symlink-loop":
        (base / "links").mkdir(mode=0o755)
        (base / "links/a").symlink_to("b")
        (base / "links/b").symlink_to("a")
        return base / "links/a"
    raise AssertionError(layout)


LAYOUTS = [
    pytest.param("plain", True, id="plain"),
    pytest.param("symlink-chain", True, id="symlink-chain"),
    pytest.param("sticky-directory-of-root", True, id="sticky-directory-of-root"),
    pytest.param("file-group-writable", False, id="file-group-writable"),
    pytest.param("parent-group-writable", False, id="parent-group-writable"),
    pytest.param("parent-of-another-owner", False, id="parent-of-another-owner"),
    pytest.param("symlink-in-a-writable-directory", False, id="symlink-in-a-writable-directory"),
    pytest.param("symlink-of-another-owner", False, id="symlink-of-another-owner"),
    pytest.param("symlink-to-a-directory-of-another-owner", False,
                 id="symlink-to-a-directory-of-another-owner"),
    pytest.param("symlinked-directory-in-a-writable-directory", False,
                 id="symlinked-directory-in-a-writable-directory"),
    pytest.param("sticky-directory-of-another-owner", False,
                 id="sticky-directory-of-another-owner"),
    pytest.param("symlink-loop", False, id="symlink-loop"),
]


@pytest.mark.parametrize("layout, trusted", LAYOUTS)
def test_the_whole_chain_of_an_executable_is_checked(tree, layout, trusted):
    named = build(tree, layout, unused_uid())
    root = make_root(mini_policy({"tool": {"executable": [str(named)]}}))
    try:
        done = run_wrapper(root, "tool")
    finally:
        remove_root(root)
    if trusted:
        assert (done.returncode, done.stdout) == (0, b"ran\n"), done.stderr
    else:
        refusal = refusal_of(done)
        assert refusal["reason"] == "command_not_installed"
        assert "not trusted" in refusal["detail"] or "symbolic links" in refusal["detail"]
    problems = []
    assert (trusted_executable([str(named)], problems) == str(named)) is trusted, problems
    assert bool(problems) is not trusted and all(str(tree) in p for p in problems)


def test_the_policy_file_behind_a_symlink_in_a_writable_directory_is_untrusted(tree):
    real = tree / "real"
    real.mkdir(mode=0o755)
    (real / "readonly.json").write_text("{}")
    (tree / "etc").mkdir()
    (tree / "etc").chmod(0o775)
    (tree / "etc/mcp-infra").symlink_to(real)
    bootstrap.resolve_trusted(str(real / "readonly.json"), {0}, str(tree))
    with pytest.raises(bootstrap.UntrustedPath, match=str(tree / "etc")):
        bootstrap.resolve_trusted(str(tree / "etc/mcp-infra/readonly.json"), {0}, str(tree))


PROBE = """#!/usr/bin/python3 -I
import resource
before = resource.getrlimit(resource.RLIMIT_FSIZE)
try:
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 30, 1 << 30))
    print("raised", before)
except (ValueError, OSError):
    print("kept", before)
"""


@pytest.mark.parametrize("scratch", [pytest.param(None, id="no-scratch"),
                                     pytest.param(1 << 20, id="scratch-1MiB")])
def test_a_command_cannot_raise_its_file_size_limit(tree, scratch):
    probe = tree / "fsize-probe"
    probe.write_text(PROBE)
    probe.chmod(0o755)
    spec = {"executable": [str(probe)]}
    if scratch is not None:
        spec["scratch_bytes"] = scratch
    root = make_root(mini_policy({"fsize-probe": spec}))
    try:
        done = run_wrapper(root, "fsize-probe", as_user=unprivileged_user())
        size = scratch or 0
        assert (done.returncode, done.stdout.decode()) == (0, f"kept ({size}, {size})\n"), \
            done.stderr
    finally:
        remove_root(root)
