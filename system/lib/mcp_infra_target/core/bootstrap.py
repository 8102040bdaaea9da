#!/usr/bin/python3 -IS
"""The one bootstrap of the three target executables, the one list of target paths and the
one trust rule (system/README.md, "Layout").

This file is installed four times, unchanged: as `mcp-wrapper` (forced command of
mcp-reader), `pra-exec` (forced command of pra-runner), `pra-run` (root, through sudo), each
picking its entry by the name it was started under, and as the library's module
`mcp_infra_target.core.bootstrap`, which the rest of the library imports for the paths and
the trust rule. In the source tree, `system/bin/*` are links to it.

Started as a program it decides where the library lives, proves that nobody but its owners
could have written it, imports it and hands over. `-I` ignores PYTHON* variables and the user
site, `-S` skips site-packages, so nothing from the caller's environment reaches sys.path;
the library directory is added only after the check.

The test override (MCP_INFRA_TEST_ROOT, a prefix for the library and every target path) lets
the test-suite run this very file. It is REFUSED (exit 126, `test_root_refused`), not merely
ignored, when sshd or sudo started the process (SSH_CONNECTION, SSH_CLIENT or SUDO_USER set:
sshd sets the first two for every session after the client's variables, sudo's env_reset
drops the variable anyway), when it is not an absolute path, or when this file is an
installed copy. sshd passes a client-sent variable only if AcceptEnv names it (the role never
does) and PermitUserEnvironment is no. Even in a test root the library must pass the
ownership check (owners: root or the caller).
"""

import os
import stat
import sys

# The one list of target paths: the library reads it from here (core.layout), the role from
# this literal, parsed as JSON (ansible/roles/mcp_infra/vars/main.yml: keep it JSON, no
# nested braces), tests/target/core/test_paths.py checks that nothing else spells them. Keys
# are stable names, values absolute paths.
TARGET_PATHS = {
    "library": "/usr/local/lib/mcp-infra",
    "mcp-wrapper": "/usr/local/libexec/mcp-infra/mcp-wrapper",
    "pra-exec": "/usr/local/libexec/mcp-infra/pra-exec",
    "pra-run": "/usr/local/sbin/pra-run",
    "policy": "/etc/mcp-infra/readonly.json",
    "catalog": "/etc/mcp-infra/actions.json",
    "host_id": "/etc/mcp-infra/host-id",
    "allowed_signers": "/etc/mcp-infra/allowed_signers",
    "state": "/var/lib/mcp-infra",
    "log": "/var/log/mcp-infra/pra-run.log",
    "sudoers": "/etc/sudoers.d/pra-runner",
    "logrotate": "/etc/logrotate.d/mcp-infra",
    "sudo": "/usr/bin/sudo",
    "scratch": "/run",
    "test_audit": "/var/log/mcp-wrapper-audit.jsonl"
}
PACKAGE = "mcp_infra_target"
TEST_ROOT_VARIABLE = "MCP_INFRA_TEST_ROOT"
SESSION_VARIABLES = ("SSH_CONNECTION", "SSH_CLIENT", "SUDO_USER")
# entry name -> module of the library whose main(test_root) serves it
ENTRIES = {"mcp-wrapper": "readonly.wrapper", "pra-exec": "actions.exec",
           "pra-run": "actions.run"}
MAX_SYMLINKS = 40
EXIT_REFUSED = 126


class UntrustedPath(Exception):
    """A file a target tool relies on could have been written by someone other than its owners."""


def check_entry(path: str, info: os.stat_result, owners: set, sticky: bool = True) -> None:
    """The ownership rule for one entry: owned by `owners`, and no one else can change it
    (no group/world write bit; a directory may have them only with the sticky bit, where
    `sticky` allows it, which lets others add entries but not rename or remove those of
    `owners`). A symlink's own mode means nothing: its directory decides who may replace it."""
    mode = info.st_mode
    others_write = mode & (stat.S_IWGRP | stat.S_IWOTH) and not stat.S_ISLNK(mode)
    if info.st_uid not in owners or (others_write and not (
            sticky and stat.S_ISDIR(mode) and mode & stat.S_ISVTX)):
        raise UntrustedPath("%s: owner %d mode %o is not trusted" % (
            path, info.st_uid, stat.S_IMODE(mode)))


def resolve_trusted(path: str, owners: set, stop: str = "/") -> str:
    """Resolve absolute `path` the way the kernel will and return its real path, applying
    the ownership rule to everything that decides what it names: every directory walked
    through, every symlink followed and, in turn, the path of its target, and the final
    entry. Directories above `stop` (a test root) are taken as they are."""
    if not path.startswith("/"):
        raise UntrustedPath(f"{path}: not an absolute path")
    above = set()
    directory = os.path.realpath(stop)
    while directory != "/":
        directory = os.path.dirname(directory)
        above.add(directory)
    if "/" not in above:
        check_entry("/", os.lstat("/"), owners)
    pending = list(reversed(path.split("/")))
    current = "/"
    links = 0
    while pending:
        name = pending.pop()
        if name in ("", "."):
            continue
        if name == "..":
            current = os.path.dirname(current)
            continue
        entry = os.path.join(current, name)
        try:
            info = os.lstat(entry)
        except OSError as error:
            raise UntrustedPath(f"{entry}: {error.strerror}")
        if entry not in above:
            check_entry(entry, info, owners)
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > MAX_SYMLINKS:
                raise UntrustedPath("%s: more than %d symbolic links" % (path, MAX_SYMLINKS))
            try:
                target = os.readlink(entry)
            except OSError as error:
                raise UntrustedPath(f"{entry}: {error.strerror}")
            pending.extend(reversed(target.split("/")))
            if target.startswith("/"):
                current = "/"
            continue
        current = entry
    return current


def trusted_library(library: str, owners: set) -> str:
    """The real library directory, if its whole path passes the ownership rule and the
    directory itself and everything in the package (subpackages, __pycache__ included) is
    owned by `owners`, not writable by anyone else (no sticky exception: the directory is on
    sys.path) and no symlink (an import would follow it unchecked)."""
    real = resolve_trusted(library, owners)
    check_entry(real, os.lstat(real), owners, sticky=False)
    package = os.path.join(real, PACKAGE)
    info = os.lstat(package)
    if not stat.S_ISDIR(info.st_mode):
        raise UntrustedPath(f"{package}: not a directory")
    for directory, subdirs, files in os.walk(package):
        for path in [directory] + [os.path.join(directory, name) for name in subdirs + files]:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                raise UntrustedPath(f"{path}: a symbolic link in the library")
            check_entry(path, info, owners, sticky=False)
    return real


def refuse(name: "str | None", reason: str, rule: str, detail: str) -> int:
    """The refusal line, written without the library (it could not be trusted or found)."""
    import json
    line = json.dumps({"mcp_refusal": {"reason": reason, "rule": rule, "detail": detail,
                                       "command": name}}, sort_keys=True)
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    return EXIT_REFUSED


def test_root(name: str) -> "str | None":
    """The test prefix, or None in production; SystemExit(126) where it must never appear."""
    root = os.environ.get(TEST_ROOT_VARIABLE)
    if root is None:
        return None
    installed = {TARGET_PATHS[entry] for entry in ENTRIES}
    if (any(variable in os.environ for variable in SESSION_VARIABLES)
            or not os.path.isabs(root) or os.path.realpath(__file__) in installed):
        raise SystemExit(refuse(name, "test_root_refused", "bootstrap/test_root",
                                "test override refused here"))
    return os.path.realpath(root)


def main() -> int:
    name = os.path.basename(__file__)
    if name not in ENTRIES:
        return refuse(None, "internal_error", "bootstrap/entry",
                      f"started under an unknown name {name[:64]!r}")
    root = test_root(name)
    owners = {0} if root is None else {0, os.geteuid()}
    try:
        library = trusted_library((root or "") + TARGET_PATHS["library"], owners)
    except (OSError, UntrustedPath) as error:
        return refuse(name, "library_untrusted", "bootstrap/library", str(error))
    sys.dont_write_bytecode = True
    sys.path.insert(0, library)
    # This file is also the library's core.bootstrap: the library uses this very module (the
    # rule just applied) instead of reading the same file again.
    sys.modules[PACKAGE + ".core.bootstrap"] = sys.modules[__name__]
    return __import__(PACKAGE + "." + ENTRIES[name], fromlist=["main"]).main(root)


if __name__ == "__main__":
    code = main()
    # Skip the interpreter's teardown (about 3 ms of module cleanup): by now the audit record
    # is written, every child reaped and every thread joined; only the streams need flushing.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)
