"""Path rules against real files and symlinks: roots, deny list, resolution, races."""

import fnmatch
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

import wrapper_support  # noqa: F401  (puts system/lib on sys.path)
from mcp_infra_target.pathrules import PathRules, lexical
from mcp_infra_target.refusal import Refusal


@pytest.fixture
def tree(tmp_path):
    """logs/ (readable root), secret/ (denied prefix), keys named by deny_names, links."""
    logs = tmp_path / "logs"
    (logs / "app").mkdir(parents=True)
    (logs / "app" / "app.log").write_text("hello\n")
    (logs / "server.key").write_text("SECRET\n")
    (logs / ".ssh").mkdir()
    (logs / ".ssh" / "config").write_text("SECRET\n")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "data").write_text("SECRET\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("outside\n")
    (logs / "to-secret").symlink_to(secret / "data")
    (logs / "to-key").symlink_to(logs / "server.key")
    (logs / "to-outside").symlink_to(outside)
    (logs / "to-app").symlink_to(logs / "app" / "app.log")
    (logs / "hop1").symlink_to(logs / "hop2")
    (logs / "hop2").symlink_to(secret)
    (logs / "dir-link").symlink_to(logs / "app")
    os.mkfifo(logs / "fifo")
    rules = PathRules(
        read_roots=[str(logs), "/proc/[0-9]*/status"],
        list_roots=[str(tmp_path)],
        deny=[str(secret), "/proc/*/environ"],
        deny_names=["*.key", ".ssh"])
    return tmp_path, rules


def reason_of(rules, path, access="read"):
    with pytest.raises(Refusal) as caught:
        rules.check(path, access, "test/rule")
    return caught.value.reason


def test_lexical_collapses_dots():
    assert lexical("/a/./b/../c//d/") == "/a/c/d"
    assert lexical("/../../etc") == "/etc"


def test_plain_file_under_root_is_allowed_and_resolved(tree):
    base, rules = tree
    assert rules.check(str(base / "logs/app/app.log"), "read", "r") == str(base / "logs/app/app.log")
    assert rules.check(str(base / "logs/to-app"), "read", "r") == str(base / "logs/app/app.log")
    assert rules.check(str(base / "logs/dir-link/app.log"), "read", "r") == str(base / "logs/app/app.log")


@pytest.mark.parametrize("relative", [
    "secret/data", "logs/to-secret", "logs/hop1/data", "logs/../secret/data",
    "logs/server.key", "logs/to-key", "logs/.ssh/config", "logs/app/../../secret/data",
])
def test_denied_by_prefix_name_symlink_or_walk(tree, relative):
    base, rules = tree
    assert reason_of(rules, str(base / relative)) == "path_denied"
    assert reason_of(rules, str(base / relative), "list") == "path_denied"


def test_denial_comes_before_existence(tree):
    base, rules = tree
    assert reason_of(rules, str(base / "secret/does-not-exist")) == "path_denied"
    assert reason_of(rules, str(base / "logs/nothing.key")) == "path_denied"


def test_outside_roots(tree):
    base, rules = tree
    assert reason_of(rules, str(base / "outside.txt")) == "path_outside_roots"
    assert reason_of(rules, str(base / "logs/to-outside")) == "path_outside_roots"
    assert reason_of(rules, "/etc/hostname") == "path_outside_roots"
    assert reason_of(rules, "/") == "path_outside_roots"


def test_relative_and_missing_and_special(tree):
    base, rules = tree
    assert reason_of(rules, "logs/app/app.log") == "path_not_absolute"
    assert reason_of(rules, "") == "path_not_absolute"
    assert reason_of(rules, str(base / "logs/missing")) == "path_not_found"
    assert reason_of(rules, str(base / "logs/fifo")) == "path_not_regular"
    assert reason_of(rules, str(base / "logs/app")) == "path_not_regular"


def test_listing_keeps_the_clients_spelling(tree):
    base, rules = tree
    link = str(base / "logs/to-app")
    assert rules.check(link, "list", "r") == link
    assert rules.check(str(base / "logs/app"), "list", "r") == str(base / "logs/app")
    assert rules.check(str(base / "logs/fifo"), "list", "r") == str(base / "logs/fifo")


def test_globs_match_one_component_only(tree):
    _, rules = tree
    own = "/proc/%d/status" % os.getpid()
    assert rules.check(own, "read", "r") == own
    assert rules.check("/proc/self/status", "read", "r").startswith("/proc/")
    assert reason_of(rules, "/proc/self/environ") == "path_denied"
    assert reason_of(rules, "/proc/%d/task/%d/status" % (os.getpid(), os.getpid())) == "path_outside_roots"


def test_magic_proc_links_resolve_to_their_targets(tree):
    _, rules = tree
    assert reason_of(rules, "/proc/self/root/etc/hostname") == "path_outside_roots"
    assert reason_of(rules, "/proc/self/cwd") == "path_outside_roots"


def test_swapped_component_is_detected(tree, monkeypatch):
    """Resolution and open disagree (a component swapped in between): refused."""
    base, rules = tree
    target = str(base / "logs/app/app.log")
    real_realpath = os.path.realpath
    monkeypatch.setattr(os.path, "realpath",
                        lambda p: target if p.endswith("to-secret") else real_realpath(p))
    (base / "logs/app/app.log").unlink()
    (base / "logs/app/app.log").symlink_to(base / "secret/data")
    assert reason_of(rules, str(base / "logs/to-secret")) in ("path_changed", "path_not_regular")


def test_an_unresolvable_path_is_refused_not_an_error(tree, monkeypatch):
    """realpath raises on a link it may not read (/proc/1/root without ptrace access)."""
    base, rules = tree

    def denied(path):
        raise PermissionError(13, "Permission denied", path)
    monkeypatch.setattr(os.path, "realpath", denied)
    assert reason_of(rules, str(base / "logs/app/app.log")) == "path_unverifiable"
    assert reason_of(rules, str(base / "secret/data")) == "path_denied"


GLOB_CASES = [("*", "x"), ("**", "ab"), ("a*a", "a"), ("a*a", "aa"), ("a*a", "aba"),
              ("*.key", ".key"), ("*.key", "x.key.bak"), ("id_rsa.*", "id_rsa."),
              ("*_key.*", "a_key.b"), ("*secret*", "secret"), ("*secret*", "my-secrets"),
              ("*se*cr*et*", "secret"), ("ab*ba*ab", "abab"), ("ab*ba*ab", "abbaab"),
              ("[0-9]*", "12"), ("?x", "ax"), ("x", "x"), ("x", "xx")]


def _matches(pattern, name):
    """Whether `pattern` covers the component `name`, as a deny name and as a deny path."""
    by_name = PathRules([], [], [], [pattern]).denied_by("/" + name) is not None
    by_path = PathRules([], [], ["/" + pattern], []).denied_by("/" + name) is not None
    assert by_name == by_path
    return by_name


@pytest.mark.parametrize("pattern, name", GLOB_CASES)
def test_globs_match_exactly_like_fnmatch(pattern, name):
    assert _matches(pattern, name) == fnmatch.fnmatchcase(name, pattern)


COMPONENT = "ab.*?[]-!\\\n"


@given(st.text(COMPONENT, min_size=1, max_size=8), st.text(COMPONENT, min_size=1, max_size=8))
def test_globs_agree_with_fnmatch_everywhere(pattern, name):
    assert _matches(pattern, name) == fnmatch.fnmatchcase(name, pattern)
