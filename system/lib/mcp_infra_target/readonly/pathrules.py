"""Where the read-only tier may look: allowed roots and a deny list, and what the command gets.

Patterns are absolute paths matched component by component with shell globs (`*` never
crosses a `/`), and a pattern matches the path itself and everything below it. Deny rules
are checked on the lexical form (`..` collapsed), on every path the resolution passes
through (each directory, each symlink and each link target) and on the path the kernel
reports for the final object, so neither a symlink nor a `..` walk leads around them;
`deny_names` match any single component (private keys, `.ssh`, ...), wherever it lives.
Being readable by the service user is never enough: it is in group `adm`, and this list is
the boundary.

The wrapper resolves a path itself, one component at a time (`O_PATH|O_NOFOLLOW` relative
to the directory before it; a symlink is read with readlinkat and its target walked with
the same checks, at most MAX_LINKS of them), so the kernel never follows a link the checks
did not see. What the command then gets (`PathRules.check`):
  - `read` (file contents): always the checked regular file itself, `/dev/fd/N`;
  - `list`, `stat`, `name` (metadata and names): the client's own spelling when the path is
    *fixed*: every entry the resolution passed (directory, symlink, final object) sits in a
    directory only root can change (owner root and not group/world-writable, or sticky
    with a root-owned entry), so the command's own lookup finds the same objects;
  - otherwise the checked object: for `list` (the command inspects the named entry without
    following it, and walks below it without following links) a directory as `/dev/fd/N/.`
    and any other entry as `/dev/fd/P/NAME` in its checked parent directory; for `stat`
    (the command follows the name to its object) the object, `/dev/fd/N` (`/.` added for
    a directory); `name` commands (realpath, namei, readlink -f) resolve names again by
    themselves and are refused `path_unstable`.
"""

import errno
import fnmatch
import os
import stat

from mcp_infra_target.core.refusal import Refusal
from mcp_infra_target.readonly.handover import Passed, hold

MAX_PATH = 4096
MAX_LINKS = 40  # as the kernel's own limit on symlinks in one lookup
ACCESS = ("read", "list", "stat", "name")
_OPEN = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
# A directory is opened with O_DIRECTORY: that lookup, unlike a bare O_PATH one, triggers an
# automount (/boot, /home on autofs) so the walk enters what the command would see.
_OPEN_DIRECTORY = _OPEN | os.O_DIRECTORY
_FD = "/dev/fd/%d"
# A lookup failing with these means the path leads nowhere the command could reach either.
_MISSING = (errno.ENOENT, errno.ENOTDIR, errno.EACCES)


def _components(path):
    return [part for part in path.split("/") if part]


def lexical(path: str) -> str:
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
            by_length = {}
            for pattern, matchers in self.compiled["deny"]:
                by_length.setdefault(len(matchers), []).append((pattern, matchers))
            self.compiled["deny_by_length"] = by_length
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

    def denied_below(self, parts):
        """`denied_by` for the path of components `parts` whose parent (`parts[:-1]`) is
        known not to be denied: only patterns exactly this long, and names on the last
        component, can newly match (the resolution checks each step this way)."""
        rules = self._rules()
        for pattern, matchers in rules["deny_by_length"].get(len(parts), ()):
            if all(match(part) for match, part in zip(matchers, parts)):
                return pattern
        last = parts[-1]
        for name, match in rules["deny_names"]:
            if match(last):
                return name
        return None

    def root_of(self, path, access):
        parts = _components(path)
        for root, matchers in self._rules()[access]:
            if _under(matchers, parts):
                return root
        return None

    def check(self, raw: str, access: str, rule: str) -> str:
        """Validate a client path for `access` (see the module docstring: "read" file
        contents, "list" the named entry, "stat" the object it names, "name" its names) and
        return the argument to pass on: the client's spelling, or a `handover.Passed`
        holding descriptors of the checked object (given to the plan being checked)."""
        if not raw.startswith("/"):
            raise Refusal("path_not_absolute", rule, f"{raw!r}: paths must be absolute")
        if len(raw) > MAX_PATH or "\x00" in raw:
            raise Refusal("bad_value", rule, "path too long or contains NUL")
        self._refuse_denied(lexical(raw), raw)
        walk = _Walk(self, raw, "read" if access == "read" else "list", rule)
        try:
            walk.run()
            return self._hand_over(walk, raw, access, rule)
        finally:
            walk.close()

    def _hand_over(self, walk, raw, access, rule):
        fd, path, info = walk.final
        real = _kernel_path(fd, rule, raw)
        if real != path:
            raise Refusal("path_changed", rule, f"{raw!r} changed while being checked")
        roots = walk.roots
        if self.root_of(real, roots) is None:
            raise Refusal("path_outside_roots", f"paths/{roots}_roots",
                          f"{raw!r} resolves to {real!r}, outside the allowed roots")
        if access == "read":
            if not stat.S_ISREG(info.st_mode):
                raise Refusal("path_not_regular", rule, f"{raw!r} is not a regular file")
            return _passed("", walk, fd, raw, real)
        if walk.unfixed is None:
            return raw
        if access == "name":
            where, why = walk.unfixed
            raise Refusal("path_unstable", rule,
                          f"{raw!r} passes {where}, {why}: this command resolves names "
                          "itself, so only paths that only root can change are allowed")
        if access == "list" and walk.entry is not None:
            parent, parent_path, name = walk.entry
            if _kernel_path(parent, rule, raw) != parent_path:
                raise Refusal("path_changed", rule, f"{raw!r} changed while being checked")
            return _passed("/" + name, walk, parent, raw, real)
        if stat.S_ISDIR(info.st_mode):
            return _passed("/.", walk, fd, raw.rstrip("/") or "/", real)
        return _passed("", walk, fd, raw, real)

    def _refuse_denied(self, form, raw):
        pattern = self.denied_by(form)
        if pattern is not None:
            raise Refusal("path_denied", "paths/deny:" + pattern, f"{raw!r} is denied")


def _passed(suffix, walk, fd, shown, real):
    """`/dev/fd/N` + `suffix` on a duplicate of `fd` that the plan holds until it has run."""
    try:
        held = os.dup(fd)
    except OSError as error:
        raise Refusal("path_unverifiable", walk.rule,
                      f"cannot hold {walk.raw!r}: {os.strerror(error.errno)}")
    return hold(Passed(_FD % held + suffix, (held,), shown, real))


def _kernel_path(fd, rule, raw):
    """The path the kernel reports for the object behind `fd`."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        raise Refusal("path_unverifiable", rule, f"cannot confirm {raw!r}")


def _changeable(directory, entry):
    """Why someone other than root could change which object `entry` is in `directory`
    (both stats), or None: only root can when the directory is root's and nobody else may
    write it, or it is sticky and the entry is root's (then only root may rename it)."""
    if directory.st_uid != 0:
        return f"owned by uid {directory.st_uid}"
    if not directory.st_mode & 0o022 or (directory.st_mode & stat.S_ISVTX
                                         and entry.st_uid == 0):
        return None
    if directory.st_mode & stat.S_ISVTX:
        return f"sticky, and the entry is owned by uid {entry.st_uid}"
    return "writable by %s" % ("others" if directory.st_mode & 0o002 else "its group")


def _join(directory, name):
    return directory + name if directory == "/" else directory + "/" + name


class _Walk:
    """One resolution of a client path, component by component, never letting the kernel
    follow a link: `final` is (fd, path, stat) of the object the path leads to, `entry`
    (parent fd, parent path, name) the last component of the client's path when it is not
    a directory (a link there is kept unfollowed as the entry, then followed for `final`),
    `unfixed` the first directory on the way where someone other than root could change an
    entry (path, why), or None. Every descriptor here is closed by `close`."""

    def __init__(self, rules, raw, roots, rule):
        self.rules, self.raw, self.roots, self.rule = rules, raw, roots, rule
        self.opened = set()
        self.stack = []
        self.final = self.entry = self.unfixed = None
        self.links = 0

    def _open(self, name, directory, flags=_OPEN):
        """`name` below the directory `directory`, never following a link."""
        fd = os.open(name, flags, dir_fd=directory)
        self.opened.add(fd)
        return fd

    def _drop(self, fd):
        """Close `fd` at once unless the result still needs it (a walk of `a/../a/..` must
        not pile up descriptors)."""
        if fd in self.opened and (self.entry is None or self.entry[0] != fd):
            self.opened.discard(fd)
            os.close(fd)

    def _pop(self, keep):
        while len(self.stack) > keep:
            self._drop(self.stack.pop()[0])

    def close(self):
        for fd in self.opened:
            os.close(fd)
        self.opened = set()

    def _missing(self, error, pending, rest):
        """A component that is not there (or not searchable): refuse as the path would have
        been refused had it existed, else path_not_found."""
        if error.errno not in _MISSING:
            raise Refusal("path_unverifiable", self.rule,
                          f"cannot resolve {self.raw!r}: {os.strerror(error.errno)}")
        candidate = lexical(_join(self.stack[-1][1], "/".join([rest] + pending[::-1])))
        self.rules._refuse_denied(candidate, self.raw)
        if self.rules.root_of(candidate, self.roots) is None:
            raise Refusal("path_outside_roots", f"paths/{self.roots}_roots",
                          f"{self.raw!r} resolves to {candidate!r}, outside the allowed roots")
        why = "cannot be reached" if error.errno == errno.EACCES else "does not exist"
        raise Refusal("path_not_found", self.rule, f"{self.raw!r} {why}")

    def _step(self, directory, entry, path):
        if self.unfixed is None:
            why = _changeable(directory, entry)
            if why is not None:
                self.unfixed = (path, why)

    def run(self):
        root = self._open("/", None, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.rules._refuse_denied("/", self.raw)
        self.stack = [(root, "/", os.fstat(root), ())]
        pending = _components(self.raw)[::-1]
        if self.raw.endswith("/") or not pending:
            pending.insert(0, ".")  # `x/` names the directory x leads to, like `x/.`
        lexical_end = True  # the next component to finish `pending` ends the client's path
        while pending:
            part = pending.pop()
            last = not pending
            if part == "..":
                self._pop(max(1, len(self.stack) - 1))
            if part in (".", ".."):
                lexical_end = lexical_end and not last
                continue
            directory, directory_path, directory_info, directory_parts = self.stack[-1]
            path = _join(directory_path, part)
            try:
                try:
                    fd = self._open(part, directory, _OPEN_DIRECTORY)
                except NotADirectoryError:  # a link or a file: open it as it is
                    fd = self._open(part, directory)
                info = os.fstat(fd)
            except OSError as error:
                self._missing(error, pending, part)
            parts = directory_parts + (part,)
            pattern = self.rules.denied_below(parts)
            if pattern is not None:  # each step's parent was checked when it was entered
                raise Refusal("path_denied", "paths/deny:" + pattern, f"{self.raw!r} is denied")
            self._step(directory_info, info, directory_path)
            if last and lexical_end:
                lexical_end = False
                if not stat.S_ISDIR(info.st_mode):
                    self.entry = (directory, directory_path, part)
            if stat.S_ISLNK(info.st_mode):
                self._follow(fd, pending)
            elif stat.S_ISDIR(info.st_mode):
                self.stack.append((fd, path, info, parts))
            elif pending:
                self._missing(OSError(errno.ENOTDIR, ""), pending, part)
            else:
                self.final = (fd, path, info)
        if self.final is None:
            self.final = self.stack[-1][:3]

    def _follow(self, fd, pending):
        self.links += 1
        if self.links > MAX_LINKS:
            raise Refusal("path_unverifiable", self.rule, f"{self.raw!r}: too many symlinks")
        try:
            target = os.readlink("", dir_fd=fd)
        except OSError:  # a link it may not read (/proc/1/root without ptrace access)
            raise Refusal("path_unverifiable", self.rule, f"cannot resolve {self.raw!r}")
        if not target:
            self._missing(OSError(errno.ENOENT, ""), pending, "")
        self._drop(fd)
        if target.startswith("/"):
            self._pop(1)
        if target.endswith("/"):
            pending.append(".")
        pending.extend(_components(target)[::-1])
