"""Path rules against real files and symlinks: roots, deny list, resolution, what the
command is handed (the client's spelling, or descriptors of the checked object), races."""

import fnmatch
import os
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp_infra_target.core.refusal import Refusal
from mcp_infra_target.readonly import handover, pathrules
from mcp_infra_target.readonly.handover import Passed
from mcp_infra_target.readonly.pathrules import PathRules, lexical
from users_support import can_create_users, made_users


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
    (logs / "hop-to-app").symlink_to("to-app")
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


def open_fds():
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def passed():
    """check() that collects what it hands over, closed at the end of the test."""
    held = []

    def check(rules, path, access="read"):
        result = rules.check(path, access, "test/rule")
        if isinstance(result, Passed):
            held.append(result)
        return result
    yield check
    for item in held:
        item.close()


def test_lexical_collapses_dots():
    assert lexical("/a/./b/../c//d/") == "/a/c/d"
    assert lexical("/../../etc") == "/etc"


@pytest.mark.parametrize("relative", ["logs/app/app.log", "logs/to-app", "logs/dir-link/app.log",
                                      "logs/app/../to-app", "logs/hop-to-app"])
def test_a_file_to_read_is_handed_over_as_the_checked_file(tree, passed, relative):
    """Reads always get the file itself (/dev/fd/N), shown as the client typed it."""
    base, rules = tree
    result = passed(rules, str(base / relative))
    assert isinstance(result, Passed) and result == f"/dev/fd/{result.fds[0]}"
    assert result.real == str(base / "logs/app/app.log") and result.shown == str(base / relative)
    with open(result) as handle:
        assert handle.read() == "hello\n"


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


def test_globs_match_one_component_only(tree, passed):
    _, rules = tree
    own = "/proc/%d/status" % os.getpid()
    assert passed(rules, own).real == own
    assert passed(rules, "/proc/self/status").real == own
    assert reason_of(rules, "/proc/self/environ") == "path_denied"
    assert reason_of(rules, "/proc/%d/task/%d/status" % (os.getpid(), os.getpid())) == "path_outside_roots"


def test_magic_proc_links_resolve_to_their_targets(tree):
    _, rules = tree
    assert reason_of(rules, "/proc/self/root/etc/hostname") == "path_outside_roots"
    assert reason_of(rules, "/proc/self/cwd") == "path_outside_roots"


def test_the_checked_file_is_read_whatever_the_name_becomes(tree, passed):
    """The race of the review: once checked, swapping the name for a link to a denied file
    (or the directory on the way for a link to a denied directory) changes nothing."""
    base, rules = tree
    name = base / "logs/app/app.log"
    result = passed(rules, str(name))
    name.rename(base / "logs/app/moved.log")
    name.symlink_to(base / "secret/data")
    (base / "logs/app").rename(base / "logs/app-moved")
    (base / "logs/app").symlink_to(base / "secret")
    with open(result) as handle:
        assert handle.read() == "hello\n"


def test_a_checked_directory_is_listed_whatever_the_name_becomes(tree, passed):
    base, rules = tree
    (base / "logs").chmod(0o777)  # someone else could change its entries: handed over
    result = passed(rules, str(base / "logs/app"), "list")
    assert result == f"/dev/fd/{result.fds[0]}/."
    (base / "logs/app").rename(base / "logs/app-moved")
    (base / "logs/app").symlink_to(base / "secret")
    assert os.listdir(result) == ["app.log"]


def test_a_component_moved_during_the_walk_is_refused(tree, monkeypatch):
    """The kernel's path of the opened object must be the path that was checked."""
    base, rules = tree
    original = pathrules._Walk._step

    def step(walk, directory, entry, path):
        if path.endswith("/logs/app"):  # the last directory was opened: move it away now
            (base / "logs/app").rename(base / "logs/elsewhere")
        return original(walk, directory, entry, path)
    monkeypatch.setattr(pathrules._Walk, "_step", step)
    assert reason_of(rules, str(base / "logs/app/app.log")) == "path_changed"


def test_an_unreadable_link_is_refused_not_an_error(tree, monkeypatch):
    """readlink fails on a link the caller may not read (/proc/1/root without ptrace
    access): path_unverifiable; a path without links is not affected."""
    base, rules = tree
    real_readlink = os.readlink

    def denied(path, *, dir_fd=None):
        if dir_fd is not None:
            raise PermissionError(13, "Permission denied", path)
        return real_readlink(path)
    monkeypatch.setattr(os, "readlink", denied)
    assert reason_of(rules, str(base / "logs/to-app")) == "path_unverifiable"
    assert rules.check(str(base / "logs/app"), "list", "r") == str(base / "logs/app")
    assert reason_of(rules, str(base / "secret/data")) == "path_denied"


def test_a_link_loop_is_refused(tree):
    base, rules = tree
    (base / "logs/loop-a").symlink_to(base / "logs/loop-b")
    (base / "logs/loop-b").symlink_to(base / "logs/loop-a")
    assert reason_of(rules, str(base / "logs/loop-a")) == "path_unverifiable"


def test_the_walk_never_enters_a_denied_directory(tree):
    """Passing through a denied directory is refused, even where the path then leaves it."""
    base, rules = tree
    assert reason_of(rules, str(base / "logs/hop1/../logs/app/app.log")) == "path_denied"


def test_descriptors_do_not_outlive_the_check(tree):
    base, rules = tree
    before = open_fds()
    for relative in ("secret/data", "logs/to-secret", "logs/missing", "logs/fifo", "logs/app",
                     "logs/app/app.log", "logs/" + "app/../" * 200 + "app"):
        try:
            result = rules.check(str(base / relative), "read", "r")
        except Refusal:
            continue
        result.close()
    assert open_fds() == before


def test_a_refused_plan_closes_what_its_earlier_checks_opened(tree):
    base, rules = tree
    before = open_fds()
    with pytest.raises(Refusal), handover.collecting() as held:
        rules.check(str(base / "logs/app/app.log"), "read", "r")
        assert len(held.passed) == 1
        rules.check(str(base / "secret/data"), "read", "r")
    assert open_fds() == before


# How a path is handed over, by access, where someone other than root could change an entry
# on the way ("open": the directory is world-writable, "sticky": 1777 with the entry not
# root's, "group": group-writable) or not ("fixed"). FORM: raw (the client's spelling),
# fd (/dev/fd/N), dir (/dev/fd/N/.), entry (/dev/fd/P/NAME), or a refusal reason.
HANDOVER = [
    pytest.param("fixed", "read", "file", "fd", id="read-fixed"),
    pytest.param("open", "read", "file", "fd", id="read-open"),
    pytest.param("fixed", "list", "file", "raw", id="list-fixed"),
    pytest.param("fixed", "stat", "dir", "raw", id="stat-fixed"),
    pytest.param("fixed", "name", "link", "raw", id="name-fixed"),
    pytest.param("open", "list", "file", "entry", id="list-open-file"),
    pytest.param("open", "list", "link", "entry", id="list-open-link"),
    pytest.param("open", "list", "dir", "dir", id="list-open-dir"),
    pytest.param("group", "list", "dir", "dir", id="list-group-dir"),
    pytest.param("open", "stat", "file", "fd", id="stat-open-file"),
    pytest.param("open", "stat", "link", "fd", id="stat-open-link"),
    pytest.param("open", "stat", "dir", "dir", id="stat-open-dir"),
    pytest.param("open", "name", "file", "path_unstable", id="name-open"),
    pytest.param("sticky", "name", "file", "path_unstable", id="name-sticky-not-roots"),
    pytest.param("sticky-root", "name", "file", "raw", id="name-sticky-roots"),
]


@pytest.mark.parametrize("where, access, kind, form", HANDOVER)
def test_how_a_path_is_handed_over(tree, passed, where, access, kind, form):
    base, rules = tree
    place = base / "logs/place"
    place.mkdir(mode=0o755)
    (place / "file").write_text("data\n")
    (place / "dir").mkdir()
    (place / "link").symlink_to(place / "file")
    mode = {"fixed": 0o755, "open": 0o777, "group": 0o775, "sticky": 0o1777,
            "sticky-root": 0o1777}[where]
    place.chmod(mode)
    if where == "sticky":  # an entry owned by someone else: that owner could rename it
        if not can_create_users():
            pytest.skip("needs root to create a user")
        with made_users(1) as (user,):
            os.lchown(place / kind, user.uid, user.gid)
            assert reason_of(rules, str(place / kind), access) == form
        return
    raw = str(place / kind)
    if form.startswith("path_"):
        assert reason_of(rules, raw, access) == form
        return
    result = passed(rules, raw, access)
    if form == "raw":
        assert result == raw and not isinstance(result, Passed)
        return
    number = result.fds[0]
    expected = {"fd": "/dev/fd/%d", "dir": "/dev/fd/%d/.", "entry": "/dev/fd/%d/" + kind}[form]
    assert result == expected % number
    assert result.shown == raw and result.real.startswith(str(place))
    # the command sees the checked object: the entry itself for list, else where it leads
    seen, checked = (os.lstat(result), os.lstat(raw)) if access == "list" else (
        os.stat(result), os.stat(raw))
    assert (seen.st_dev, seen.st_ino) == (checked.st_dev, checked.st_ino)
    assert stat.S_ISLNK(seen.st_mode) == (access == "list" and kind == "link")


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
