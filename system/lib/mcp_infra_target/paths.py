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


def check_trusted(path, owners, stop="/"):
    """`path` and each parent up to `stop` exist, are owned by `owners`, and nobody else can
    write them (no group/world write bit). Symlinks are resolved first, so the check is on
    the files that will actually be read."""
    current = os.path.realpath(path)
    stop = os.path.realpath(stop)
    while True:
        try:
            info = os.lstat(current)
        except OSError as error:
            raise UntrustedPath(f"{current}: {error.strerror}")
        if info.st_uid not in owners or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise UntrustedPath("%s: owner %d mode %o is not trusted" % (
                current, info.st_uid, stat.S_IMODE(info.st_mode)))
        if current == stop or current == "/":
            return
        current = os.path.dirname(current)


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
