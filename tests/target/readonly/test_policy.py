"""The shipped default policy (system/policy/readonly.json) as data: shape, size, binaries,
option spellings against the real binaries, dangerous options absent, and that ordinary
diagnostics typed the common way are allowed."""

import json
import os
import re
import subprocess

import pytest
from mcp_infra_target.core.refusal import Refusal
from mcp_infra_target.readonly import argvparse, policy, tokenise
from wrapper_support import (
    POLICY_FILE,
    REPO,
    default_policy_document,
    load_document,
)

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


# Field selection (issue 9, finding 4): options that select fields, properties, formats,
# templates or sort keys take only allow-listed names. Checked on the document itself, so an
# option added later with a free-form value fails here.
SELECTING = {"--format", "--output", "--output-fields", "--property", "--field", "--showformat",
             "--printf", "-printf", "--show", "--sort", "--sort-override", "--order",
             "--extended", "--parse", "--caches", "--split", "--dedup", "--tree",
             "--time-format", "--time-style", "--json"}
CLOSED_KINDS = {"enum", "format", "int", "number"}


def _closed(spec, types, seen=()):
    """Whether every value `spec` accepts is drawn from an allow-list: enums and templates,
    lists and alternatives of them, regexes whose named groups are all closed (the rest of
    such a regex is punctuation: a '+' prefix, a ':width')."""
    kind = spec["type"]
    if kind in types and kind not in seen:
        return _closed(types[kind], types, seen + (kind,))
    if kind in CLOSED_KINDS:
        return True
    if kind == "list":
        return _closed(spec["item"], types, seen)
    if kind == "any_of":
        return all(_closed(member, types, seen) for member in spec["types"])
    if kind == "regex":
        return bool(spec.get("groups")) and all(_closed(g, types, seen)
                                                for g in spec["groups"].values())
    return False


def _all_options(document):
    for plugin in document["plugins"].values():
        for name, command in plugin["commands"].items():
            stack = [(name, command)]
            while stack:
                where, node = stack.pop()
                for key, spec in node.get("options", {}).items():
                    yield where, key.split(), spec
                stack.extend((f"{where} {sub}", data)
                             for sub, data in node.get("subcommands", {}).items())


def test_every_field_selecting_option_takes_only_allow_listed_names():
    document = json.loads(POLICY_FILE.read_text())
    audited, open_ended = [], []
    for where, spellings, spec in _all_options(document):
        selecting = SELECTING & set(spellings) or (where == "systemctl" and "-P" in spellings)
        if spec is None or not selecting:
            continue
        audited.append(where)
        if not _closed({k: v for k, v in spec.items() if k != "mode"}, document["types"]):
            open_ended.append((where, spellings))
    assert open_ended == []
    assert len(audited) >= 30


AUDITED_SHORT_SPELLINGS = [
    ("journalctl", ["-F", "--field"]), ("journalctl", ["-o", "--output"]),
    ("systemctl", ["-p", "--property"]), ("systemctl", ["-o", "--output"]),
    ("loginctl", ["-p", "--property"]), ("timedatectl", ["-p", "--property"]),
    ("ps", ["-o", "-O", "--format"]), ("ps", ["--sort", "-k"]), ("top", ["-o", "--sort-override"]),
    ("lsblk", ["-o", "--output"]), ("lsblk", ["-x", "--sort"]), ("findmnt", ["-o", "--output"]),
    ("lsns", ["-o", "--output"]), ("lslocks", ["-o", "--output"]), ("lsipc", ["-o", "--output"]),
    ("lsmem", ["-o", "--output"]), ("lscpu", ["-e", "--extended"]), ("df", ["--output"]),
    ("stat", ["-c", "--format"]), ("dpkg-query", ["-f", "--showformat"]),
    ("docker inspect", ["-f", "--format"]), ("podman inspect", ["-f", "--format"]),
]


@pytest.mark.parametrize("where, spellings", AUDITED_SHORT_SPELLINGS,
                         ids=[f"{w} {s[0]}" for w, s in AUDITED_SHORT_SPELLINGS])
def test_the_audited_options_are_the_selecting_ones(where, spellings):
    document = json.loads(POLICY_FILE.read_text())
    found = {w: s for w, s, spec in _all_options(document) if spec is not None
             for s in [tuple(s)] if set(spellings) <= set(s)}
    assert where in found, (where, spellings)


def _values(document, name):
    spec = document["types"][name]
    while spec["type"] == "list":
        spec = spec["item"]
        spec = document["types"].get(spec["type"], spec)
    return spec["values"] if "values" in spec else spec["fields"]


def test_allow_lists_hold_no_secret_bearing_names():
    """The classes the review named: environments, credentials, command lines and memory
    images. (A test of the data, not a deny-list the wrapper applies.)"""
    document = json.loads(POLICY_FILE.read_text())
    properties = _values(document, "systemd_property")
    assert not [p for p in properties
                if p.startswith(("Environment", "Exec", "PassEnvironment", "UnsetEnvironment"))
                and p not in ("ExecMainStartTimestamp", "ExecMainStartTimestampMonotonic",
                              "ExecMainExitTimestamp", "ExecMainExitTimestampMonotonic",
                              "ExecMainPID", "ExecMainCode", "ExecMainStatus")]
    assert not [p for p in properties if "Credential" in p or p in (
        "StandardInputData", "StandardInputText", "Options", "LogExtraFields", "Environment")]
    fields = _values(document, "journal_field")
    assert not [f for f in fields if "CMDLINE" in f or "ENVIRON" in f or "PROC_" in f
                or f in ("COREDUMP", "COREDUMP_CWD", "COREDUMP_ROOT", "COREDUMP_OPEN_FDS")]
    for name in ("container_ps_format", "container_images_format", "container_stats_format",
                 "container_inspect_format"):
        paths = _values(document, name)
        assert not [p for p in paths if "Env" in p or "Label" in p or p in (
            ".Config", ".HostConfig", ".Args", ".Config.Cmd", ".Config.Entrypoint")], name
    assert ".State" not in _values(document, "container_inspect_format")  # a whole subtree
    assert not {"environ", "env", "e"} & set(_values(document, "ps_field"))


def test_default_property_sets_pass_their_own_allow_lists(loaded):
    for words in (["systemctl", "show", "nginx"], ["loginctl", "show-user", "root"],
                  ["loginctl", "show-session", "1"], ["timedatectl", "show"],
                  ["timedatectl", "show-timesync"]):
        plan = argvparse.plan(loaded, words)
        defaults = [word for kind, word, _ in plan.items if kind == "default"]
        assert len(defaults) == 1 and defaults[0].startswith("--property="), words
        argvparse.plan(loaded, words[:1] + defaults + words[1:])


COLUMN_TOOLS = {"lsblk": ["lsblk"], "findmnt": ["findmnt"], "lsmem": ["lsmem"], "lsns": ["lsns"],
                "lslocks": ["lslocks"], "lsipc": ["lsipc"], "swapon": ["swapon"],
                "lscpu": ["lscpu"], "lscpu_cache": ["lscpu"]}


@pytest.mark.parametrize("name", sorted(COLUMN_TOOLS))
def test_column_allow_lists_name_real_columns_of_the_installed_binary(loaded, name):
    command = loaded.commands[COLUMN_TOOLS[name][0]]
    text = _help_text([command.executable()])
    document = json.loads(POLICY_FILE.read_text())
    missing = [c for c in document["types"][name + "_column"]["values"]
               if not re.search(rf"(?m)^\s+{re.escape(c)}\s", text)]
    assert missing == []
