"""Where one run finds the target's files: the paths of core.bootstrap.TARGET_PATHS, under a
test prefix or not, the owners the trust rule (core.bootstrap.resolve_trusted) accepts for
them, and the executables it trusts.

Production paths are fixed. A test prefix (MCP_INFRA_TEST_ROOT, accepted only by the
source-tree executables outside sshd and sudo: see core/bootstrap.py) maps every path below
it, accepts files of the caller besides root's and sends audit records to a file instead of
syslog.
"""
import os
import stat

from mcp_infra_target.core.bootstrap import TARGET_PATHS, UntrustedPath, resolve_trusted

HOST_ID_MAX_BYTES = 512


def trusted_executable(candidates: list, problems: "list | None" = None) -> "str | None":
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
    """Paths and trust settings for one run: production (test_root None) or a test prefix."""

    def __init__(self, test_root: "str | None" = None):
        self.test_root = test_root
        self.prefix = test_root or ""
        self.audit_file = self.path("test_audit") if test_root else None
        self.owners = {0} if test_root is None else {0, os.geteuid()}
        self.trust_stop = test_root or "/"

    def path(self, name: str) -> str:
        """Target path `name` (a key of TARGET_PATHS) in this layout."""
        return self.prefix + TARGET_PATHS[name]

    def check_trusted(self, name: str) -> str:
        """Target path `name`, after the trust rule passed on everything that decides what it
        names: every directory on the way, every symlink followed with its target's path, the
        file (UntrustedPath otherwise)."""
        path = self.path(name)
        resolve_trusted(path, self.owners, self.trust_stop)
        return path

    def trusted_policy(self) -> str:
        return self.check_trusted("policy")

    def host_id(self) -> "str | None":
        """The host's id as the role wrote it, stripped; None if it cannot be read."""
        try:
            with open(self.path("host_id"), encoding="utf-8") as handle:
                return handle.read(HOST_ID_MAX_BYTES).strip() or None
        except (OSError, UnicodeDecodeError):
            return None
