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


def _glob(pattern):
    """A predicate equal to `fnmatch.fnmatchcase(name, pattern)`, without a regex where none
    is needed: fnmatch compiles one per pattern, and with a hundred deny patterns that cost
    more than the rest of a request. Literal patterns compare equal, `*`-only patterns match
    segment by segment; `?` and `[...]` are left to fnmatch."""
    if "?" in pattern or "[" in pattern:
        return lambda name: fnmatch.fnmatchcase(name, pattern)
    if "*" not in pattern:
        return pattern.__eq__
    first, *middle, last = pattern.split("*")

    def match(name):
        if (len(name) < len(first) + len(last) or not name.startswith(first)
                or not name.endswith(last)):
            return False
        position, end = len(first), len(name) - len(last)
        for segment in middle:  # leftmost placement is enough when `*` is the only wildcard
            position = name.find(segment, position, end)
            if position < 0:
                return False
            position += len(segment)
        return True
    return match


def _compile(pattern):
    """`pattern` with one predicate per component, for `_under`."""
    return pattern, [_glob(part) for part in _components(pattern)]


def _under(matchers, path_parts):
    if len(path_parts) < len(matchers):
        return False
    return all(match(part) for match, part in zip(matchers, path_parts))


class PathRules:
    """Compiled path policy; `check` is the only way a client path reaches a command."""

    def __init__(self, read_roots, list_roots, deny, deny_names):
        self.patterns = {"read": list(read_roots), "list": list(list_roots), "deny": list(deny),
                         "deny_names": list(deny_names)}
        self.compiled = None

    def _rules(self):
        """Predicates for every pattern, built on first use: most requests name no path."""
        if self.compiled is None:
            patterns = self.patterns
            self.compiled = {key: [_compile(p) for p in patterns[key]]
                             for key in ("read", "list", "deny")}
            self.compiled["deny_names"] = [(name, _glob(name)) for name in patterns["deny_names"]]
        return self.compiled

    def denied_by(self, path):
        """The deny pattern that covers `path` (absolute, normalised), or None."""
        rules = self._rules()
        parts = _components(path)
        for pattern, matchers in rules["deny"]:
            if _under(matchers, parts):
                return pattern
        for part in parts:
            for name, match in rules["deny_names"]:
                if match(part):
                    return name
        return None

    def root_of(self, path, access):
        parts = _components(path)
        for root, matchers in self._rules()[access]:
            if _under(matchers, parts):
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
        self._refuse_denied(lexical(raw), raw)
        try:
            resolved = os.path.realpath(raw)
        except OSError:  # an unreadable link on the way (/proc/1/root without ptrace access)
            raise Refusal("path_unverifiable", rule, f"cannot resolve {raw!r}")
        self._refuse_denied(resolved, raw)
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

    def _refuse_denied(self, form, raw):
        pattern = self.denied_by(form)
        if pattern is not None:
            raise Refusal("path_denied", "paths/deny:" + pattern, f"{raw!r} is denied")

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
