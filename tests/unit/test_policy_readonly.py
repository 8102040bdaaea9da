"""The shipped default policy (system/policy/readonly.json) as data: shape, size, binaries,
option spellings against the real binaries, dangerous options absent, and that ordinary
diagnostics typed the common way are allowed."""

import os
import re
import subprocess

import pytest

from wrapper_support import (  # noqa: I001 (first: sets sys.path)
    POLICY_FILE,
    REPO,
    default_policy_document,
    load_document,
)
from mcp_infra_target import argvparse, policy, tokenise
from mcp_infra_target.refusal import Refusal

ORDINARY = REPO / "tests/security/corpus/readonly_ordinary.txt"
HOST_DEPENDENT = {"path_not_found", "command_not_installed"}


@pytest.fixture(scope="module")
def loaded():
    return policy.load(str(POLICY_FILE))


def test_loads_with_at_least_120_forms_in_the_named_plugins(loaded):
    assert len(loaded.forms()) >= 120
    plugins = {command.plugin for command in loaded.commands.values()}
    assert {"monitoring", "network", "filesystem", "systemd", "containers", "posix-system",
            "posix-process", "posix-text"} <= plugins


def test_every_required_binary_exists_here(loaded):
    """Non-optional commands are part of a standard Debian 12 system (this machine)."""
    missing = [name for name, command in loaded.commands.items()
               if not command.optional and command.executable() is None]
    assert missing == []


def test_environment_is_fixed_and_pager_free(loaded):
    env = loaded.environment
    assert env["PATH"] == "/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["PAGER"] == env["SYSTEMD_PAGER"] == env["DPKG_PAGER"] == "cat"
    assert not [name for name in env if name.startswith("LD_")]


def test_option_references_name_defined_options(loaded):
    for command in loaded.commands.values():
        for node in command.walk():
            chain = [n for n in command.walk() if n is node or n.depth < node.depth]
            defined = {spelling for n in chain for spelling in n.options}
            for unless, _ in node.defaults:
                assert unless <= defined, node.rule
            for when, _ in node.variants:
                assert when <= defined, node.rule


def test_systemd_tools_force_no_pager(loaded):
    for name in ("systemctl", "journalctl", "loginctl", "timedatectl", "localectl",
                 "systemd-analyze", "systemd-cgls"):
        assert "--no-pager" in loaded.commands[name].forced, name
    assert loaded.commands["dmesg"].forced == ["--nopager"]
    assert loaded.commands["top"].forced == ["-b"]


# Spellings that execute, write, page, follow, read other files or reach other hosts. Walkers
# never follow links out of what was checked (-L, -follow and kin), and `file`, handed the
# checked file as /dev/fd/N, must not describe that link instead (-h).
FORBIDDEN = {
    "find": ["-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0", "-fprintf",
             "-fls", "-files0-from", "-D", "-follow", "-L", "-H"],
    "journalctl": ["-f", "--follow", "-D", "--directory", "--file", "--root", "--image", "-M",
                   "--machine", "--cursor-file", "--vacuum-size", "--vacuum-time", "--vacuum-files",
                   "--rotate", "--flush", "--sync", "--setup-keys", "--verify", "--update-catalog",
                   "--relinquish-var", "--smart-relinquish-var", "--namespace", "--user"],
    "systemctl": ["-H", "--host", "-M", "--machine", "--root", "--image", "--user", "--global",
                  "-f", "--force", "--now", "--runtime", "-s", "--signal", "--kill-whom"],
    "tail": ["-f", "-F", "--follow", "--retry", "--pid", "-s", "--sleep-interval"],
    "grep": ["-r", "-R", "--recursive", "--dereference-recursive", "-d", "--directories",
             "-D", "--devices", "-f", "--file", "--include", "--exclude-from"],
    "sort": ["-o", "--output", "-T", "--temporary-directory", "--compress-program",
             "--files0-from", "--random-source"],
    "date": ["-f", "--file", "-s", "--set"],
    "dmesg": ["-H", "--human", "-w", "--follow", "-W", "--follow-new", "-F", "--file", "-c",
              "--read-clear", "-C", "--clear", "-D", "-E", "-n", "--console-level"],
    "ss": ["-K", "--kill", "-D", "--diag", "-F", "--filter", "-N", "--net", "-E", "--events"],
    "sysctl": ["-w", "--write", "-p", "--load", "--system", "-f"],
    "ping": ["-f", "-p", "-b", "-l"],
    "dig": ["-f", "-k", "-y", "-b", "-p"],
    "free": ["-s", "--seconds", "-c", "--count"],
    "top": ["-d 0"],
    "findmnt": ["-F", "--tab-file", "-p", "--poll", "-w", "--timeout"],
    "ls": ["-R", "--recursive", "-L", "--dereference", "-H", "--dereference-command-line"],
    "du": ["--files0-from", "-X", "--exclude-from", "-L", "--dereference", "-D", "-H",
           "--dereference-args"],
    "lsattr": ["-R"],
    "wc": ["--files0-from"],
    "md5sum": ["-c", "--check"],
    "sha256sum": ["-c", "--check"],
    "last": ["-f", "--file"],
    "pgrep": ["-F", "--pidfile", "-L", "--logpidfile"],
    "lsof": ["+D", "+d", "-D", "-k", "-m", "-r", "+r"],
    "file": ["-s", "-z", "-Z", "-f", "-m", "-C", "-p", "-h", "--no-dereference"],
    "hostname": ["-F", "--file", "-b", "--boot"],
    "lsblk": ["--sysroot"],
    "lscpu": ["-s", "--sysroot"],
    "dpkg": ["-i", "--install", "-r", "--remove", "-P", "--purge", "--root", "--instdir",
             "--admindir", "--log", "--status-fd", "--pre-invoke", "--post-invoke", "-D", "--debug"],
}


@pytest.mark.parametrize("name", sorted(FORBIDDEN))
def test_dangerous_options_are_absent(loaded, name):
    command = loaded.commands[name]
    for node in command.walk():
        assert not set(FORBIDDEN[name]) & set(node.options), node.rule


def test_dangerous_subcommands_are_absent(loaded):
    sub = {name: {word for node in command.walk() for word in node.subcommands}
           for name, command in loaded.commands.items()}
    assert not sub["systemctl"] & {"start", "stop", "restart", "edit", "daemon-reload", "help",
                                   "kill", "set-property", "enable", "disable", "mask", "link"}
    assert not sub["ip"] & {"netns", "monitor", "set", "add", "del", "delete", "flush", "exec"}
    assert not sub["docker"] & {"run", "exec", "cp", "attach", "build", "compose", "plugin"}
    assert not sub["apt"] & {"install", "update", "upgrade", "remove", "changelog", "download"}
    assert not sub["coredumpctl"] & {"debug", "gdb", "dump"}
    for absent in ("sh", "bash", "env", "xargs", "awk", "sed", "tar", "less", "more", "vi",
                   "git", "curl", "wget", "nc", "ssh", "scp", "sftp", "watch", "timeout", "nice",
                   "strace", "tee", "dd", "split", "perl", "python3", "busctl", "sudo"):
        assert absent not in loaded.commands, absent


def _help_text(argv):
    texts = []
    for extra in (["--help"], ["--help", "all"]):
        try:
            done = subprocess.run(argv + extra, capture_output=True, timeout=10, check=False,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            continue
        texts.append((done.stdout + done.stderr).decode("utf-8", "replace"))
    return "\n".join(texts)


# Accepted exactly by the binary although --help does not list them (checked by hand):
# apt's own option parser maps these to configuration; systemctl keeps older spellings.
OWN_PARSER = {"apt", "apt-cache"}
HIDDEN_BUT_REAL = {"systemd/systemctl": {"--no-legend", "--after", "--before"}}


def test_long_options_are_complete_names_of_the_installed_binary(loaded):
    """getopt_long accepts unambiguous prefixes: a policy spelling that is not a real full
    option name would be silently read as another option. Every listed --long spelling must
    appear in the binary's own help, and options the help shows as [=ARG] must be attached."""
    problems = []
    for name, command in sorted(loaded.commands.items()):
        executable = command.executable()
        if executable is None or command.style != "gnu" or name in OWN_PARSER:
            continue
        for node in command.walk():
            longs = [s for s in node.options if s.startswith("--")]
            if not longs:
                continue
            names, parent = [], node
            while parent is not command:
                names.insert(0, parent.name)
                parent = parent.parent
            text = _help_text([executable] + names)
            hidden = HIDDEN_BUT_REAL.get(node.rule, set())
            for spelling in longs:
                if spelling in hidden:
                    continue
                if not re.search(rf"(?<![\w-]){re.escape(spelling)}(?![\w-])", text):
                    problems.append((node.rule, spelling, "not in --help"))
                elif re.search(rf"(?<![\w-]){re.escape(spelling)}\[=", text) and \
                        node.options[spelling].mode not in ("attached", "lookahead"):
                    problems.append((node.rule, spelling, "optional argument not attached"))
    assert problems == []


def ordinary_lines():
    return [line for line in ORDINARY.read_text().splitlines() if line and not line.startswith("#")]


def test_ordinary_diagnostics_are_allowed(loaded):
    refused = []
    for line in ordinary_lines():
        try:
            argvparse.plan(loaded, tokenise.split(line, 128))
        except Refusal as refusal:
            if refusal.reason not in HOST_DEPENDENT:
                refused.append((line, refusal.reason, refusal.detail))
    assert len(ordinary_lines()) >= 150
    assert refused == []


def test_forced_flags_may_also_be_typed(loaded):
    """People type `--no-pager` themselves; it must not turn an allowed request into a refusal."""
    for command in loaded.commands.values():
        for node in command.walk():
            defined = {s for n in (node, command) for s in n.options}
            for word in node.forced:
                if word.startswith("-") and "=" not in word:
                    assert word in defined, (node.rule, word)


# What each path-taking form is handed for a path in a directory anyone may write (so the
# name could point elsewhere by the time the command looks it up): the checked object
# (`fd`: /dev/fd/N, `dir`: /dev/fd/N/.), the entry in its checked directory (`entry`:
# /dev/fd/P/NAME, for commands that do not follow it: a directory is handed over as itself
# there too), or a refusal for commands that resolve names themselves. {d} is a directory,
# {f} a file.
HANDED = [
    ("cat {f}", "fd"), ("head -v {f}", "fd"), ("grep -H x {f}", "fd"), ("file {f}", "fd"),
    ("md5sum {f}", "fd"), ("zcat {f}", "fd"),
    ("ls {d}", "dir"), ("ls {f}", "fd"), ("ls -l {d}", "dir"), ("ls -l {f}", "entry"),
    ("ls -d {f}", "entry"), ("ls -F {f}", "entry"), ("stat {f}", "entry"), ("stat -L {f}", "fd"),
    ("stat -f {d}", "dir"), ("du -s {d}", "dir"), ("du {f}", "entry"),
    ("find {d} -name x", "dir"), ("find / -newer {f}", "entry"), ("df {d}", "dir"),
    ("date -r {f}", "fd"), ("lsattr -d {d}", "dir"), ("lsattr {f}", "entry"),
    ("readlink {f}", "entry"), ("readlink -f {f}", "path_unstable"),
    ("realpath {f}", "path_unstable"), ("namei -l {f}", "path_unstable"),
    ("findmnt -T {d}", "path_unstable"),
]


@pytest.mark.parametrize("line, form", HANDED, ids=[line for line, _ in HANDED])
def test_path_operands_get_what_their_command_needs(tmp_path, line, form):
    document = default_policy_document()
    document["paths"]["read_roots"].append(str(tmp_path))
    loaded = load_document(document)
    base = tmp_path / "open"
    base.mkdir()
    (base / "d").mkdir()
    (base / "f").write_text("x\n")
    base.chmod(0o777)
    words = tokenise.split(line.format(d=base / "d", f=base / "f"), 128)
    if form.startswith("path_"):
        with pytest.raises(Refusal) as caught:
            argvparse.plan(loaded, words)
        assert caught.value.reason == form
        return
    plan = argvparse.plan(loaded, words)
    try:
        (passed,) = plan.held.passed
        number = passed.fds[0]
        name = os.path.basename(passed.shown)
        assert passed == {"fd": f"/dev/fd/{number}", "dir": f"/dev/fd/{number}/.",
                          "entry": f"/dev/fd/{number}/{name}"}[form]
        assert passed in plan.argv
    finally:
        plan.close()
