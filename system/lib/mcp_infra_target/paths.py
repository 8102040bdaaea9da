"""Where the target-side files live, and the ownership rule that makes them trustworthy.

Production paths are fixed. A test prefix (MCP_INFRA_TEST_ROOT, honoured only by the
source-tree wrapper outside sshd: see wrappers/mcp-wrapper) maps every path below it and
sends audit records to a file instead of syslog.
"""

import os
import stat

POLICY = "/etc/mcp-infra/readonly.json"
TEST_AUDIT_FILE = "/var/log/mcp-wrapper-audit.jsonl"


class UntrustedPath(Exception):
    """A file the wrapper relies on could have been written by someone other than its owners."""


MAX_SYMLINKS = 40


def _check_entry(path, info, owners):
    """The ownership rule for one entry: owned by `owners`, and no one else can change it
    (no group/world write bit; a directory may have them only with the sticky bit, which
    lets others add entries but not rename or remove those of `owners`). A symlink's own
    mode means nothing: its directory decides who may replace it."""
    mode = info.st_mode
    others_write = mode & (stat.S_IWGRP | stat.S_IWOTH) and not stat.S_ISLNK(mode)
    if info.st_uid not in owners or (others_write and not (
            stat.S_ISDIR(mode) and mode & stat.S_ISVTX)):
        raise UntrustedPath("%s: owner %d mode %o is not trusted" % (
            path, info.st_uid, stat.S_IMODE(mode)))


def resolve_trusted(path, owners, stop="/"):
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
        _check_entry("/", os.lstat("/"), owners)
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
            _check_entry(entry, info, owners)
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > MAX_SYMLINKS:
                raise UntrustedPath(f"{path}: more than {MAX_SYMLINKS} symbolic links")
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


def check_trusted(path, owners, stop="/"):
    """`path`, every directory on the way to it and every symlink followed (with the path of
    its target) exist and pass the ownership rule (`resolve_trusted`), so the check is on the
    file that will actually be read and on everything that could swap it."""
    resolve_trusted(path, owners, stop)


def trusted_executable(candidates, problems=None):
    """The first candidate whose whole path passes the ownership rule for root and that is an
    executable regular file; None if none does (each reason appended to `problems`)."""
    for candidate in candidates:
        try:
            info = os.stat(resolve_trusted(candidate, {0}))
        except (OSError, UntrustedPath) as error:
            if problems is not None:
                problems.append(str(error))
            continue
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o111:
            return candidate
        if problems is not None:
            problems.append(f"{candidate}: not an executable file")
    return None


class Layout:
    """Paths and trust settings for one run: production (root None) or a test prefix."""

    def __init__(self, test_root=None):
        self.test_root = test_root
        prefix = test_root or ""
        self.policy = prefix + POLICY
        self.audit_file = prefix + TEST_AUDIT_FILE if test_root else None
        self.owners = {0} if test_root is None else {0, os.geteuid()}
        self.trust_stop = test_root or "/"

    def trusted_policy(self):
        check_trusted(self.policy, self.owners, self.trust_stop)
        return self.policy
