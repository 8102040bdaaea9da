"""Where the read-only tier may look: allowed roots and a deny list, applied to resolved paths.

Patterns are absolute paths matched component by component with shell globs (`*` never
crosses a `/`), and a pattern matches the path itself and everything below it. Deny rules
are checked on both the lexical form (`..` collapsed) and the symlink-resolved form, so
neither a symlink nor a `..` walk leads around them; `deny_names` match any single
component (private keys, `.ssh`, ...), wherever it lives. Being readable by the service
user is never enough: it is in group `adm`, and this list is the boundary.
"""

import fnmatch
import os
import stat

from .refusal import Refusal

MAX_PATH = 4096


def _components(path):
    return [part for part in path.split("/") if part]


def lexical(path):
    """Collapse `.`, `..` and repeated slashes without touching the filesystem."""
    parts = []
    for part in _components(path):
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


def _under(pattern_parts, path_parts):
    if len(path_parts) < len(pattern_parts):
        return False
    return all(fnmatch.fnmatchcase(p, q) for p, q in zip(path_parts, pattern_parts))


class PathRules:
    """Compiled path policy; `check` is the only way a client path reaches a command."""

    def __init__(self, read_roots, list_roots, deny, deny_names):
        self.roots = {
            "read": [(root, _components(root)) for root in read_roots],
            "list": [(root, _components(root)) for root in list_roots],
        }
        self.deny = [(pattern, _components(pattern)) for pattern in deny]
        self.deny_names = list(deny_names)

    def denied_by(self, path):
        """The deny pattern that covers `path` (absolute, normalised), or None."""
        parts = _components(path)
        for pattern, pattern_parts in self.deny:
            if _under(pattern_parts, parts):
                return pattern
        for part in parts:
            for name in self.deny_names:
                if fnmatch.fnmatchcase(part, name):
                    return name
        return None

    def root_of(self, path, access):
        parts = _components(path)
        for root, root_parts in self.roots[access]:
            if _under(root_parts, parts):
                return root
        return None

    def check(self, raw, access, rule):
        """Validate a client path for `access` ("read": file contents, "list": metadata).

        Returns the string to pass on: the resolved path for reads (what was checked is
        what gets opened), the client's own spelling for listings (both of its forms were
        checked, and `ls -l`/`readlink` should show the link the client named).
        """
        if not raw.startswith("/"):
            raise Refusal("path_not_absolute", rule, f"{raw!r}: paths must be absolute")
        if len(raw) > MAX_PATH or "\x00" in raw:
            raise Refusal("bad_value", rule, "path too long or contains NUL")
        plain = lexical(raw)
        resolved = os.path.realpath(raw)
        for form in (plain, resolved):
            pattern = self.denied_by(form)
            if pattern is not None:
                raise Refusal("path_denied", "paths/deny:" + pattern, f"{raw!r} is denied")
        if self.root_of(resolved, access) is None:
            raise Refusal("path_outside_roots", f"paths/{access}_roots",
                          f"{raw!r} resolves to {resolved!r}, outside the allowed roots")
        try:
            info = os.stat(resolved)
        except OSError:
            raise Refusal("path_not_found", rule, f"{raw!r} does not exist")
        if access == "list":
            return raw
        if not stat.S_ISREG(info.st_mode):
            raise Refusal("path_not_regular", rule, f"{raw!r} is not a regular file")
        self._confirm_open(resolved, rule)
        return resolved

    @staticmethod
    def _confirm_open(resolved, rule):
        """Open without following, then ask the kernel which file that is: a swapped
        component between resolution and open shows up as a different name."""
        try:
            fd = os.open(resolved, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            raise Refusal("path_changed", rule, f"{resolved!r} changed while being checked")
        try:
            opened = os.readlink("/proc/self/fd/%d" % fd)
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            raise Refusal("path_unverifiable", rule, f"cannot confirm {resolved!r}")
        finally:
            os.close(fd)
        if opened != resolved or not regular:
            raise Refusal("path_changed", rule, f"{resolved!r} changed while being checked")
