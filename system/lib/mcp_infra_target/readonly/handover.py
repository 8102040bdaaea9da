"""Descriptors handed from a path check to the command, and the names shown for them.

A path operand that someone other than root could change between the check and the
command's own lookup is given to the command as the checked object itself: a descriptor
the wrapper opened (`/dev/fd/N`, pathrules decides the form). The descriptors a plan holds
live from its checks to the end of its run (`Held`); the command's output spells them as
the client typed the path again (`Rename`), so headers and names stay readable.
"""

import os
import re
import threading
from contextlib import contextmanager

# Bytes that may continue a name: a descriptor spelling followed by one of them is a longer
# name (`/dev/fd/3` inside `/dev/fd/31`), never rewritten.
_NAME_TAIL = rb"(?![0-9A-Za-z._-])"
_local = threading.local()


class Passed(str):
    """The argument the command gets for one checked path (`/dev/fd/N`, `/dev/fd/N/.` or
    `/dev/fd/N/NAME`), with the descriptors it needs, the client's spelling to show in its
    place (`shown`) and the path the kernel reported for the checked object (`real`)."""

    def __new__(cls, text, fds, shown, real):
        self = str.__new__(cls, text)
        self.fds, self.shown, self.real = tuple(fds), shown, real
        return self

    def close(self):
        fds, self.fds = self.fds, ()
        for fd in fds:
            os.close(fd)


class Held:
    """The Passed arguments of one plan: open from its checks until `close` (after the run,
    or when the plan is refused or only explained)."""

    def __init__(self):
        self.passed = []

    def fds(self):
        return tuple(fd for passed in self.passed for fd in passed.fds)

    def audit(self):
        return [{"arg": str(p), "path": p.shown, "real": p.real} for p in self.passed]

    def filters(self):
        """One Rename per output stream, or None when nothing was handed over."""
        if not self.passed:
            return None
        names = {str(p): p.shown for p in self.passed}
        return {"stdout": Rename(names), "stderr": Rename(names)}

    def close(self):
        passed, self.passed = self.passed, []
        for item in passed:
            item.close()

    def __del__(self):  # a backstop for a plan dropped without close (tests, exceptions)
        self.close()


@contextmanager
def collecting():
    """Collect every Passed made by checks in this block (this thread); on an exception the
    descriptors are closed before it propagates."""
    held, outer = Held(), getattr(_local, "held", None)
    _local.held = held
    try:
        yield held
    except BaseException:
        held.close()
        raise
    finally:
        _local.held = outer


def hold(passed: Passed) -> Passed:
    """Give `passed` to the plan being checked, if any (else the caller owns it)."""
    held = getattr(_local, "held", None)
    if held is not None:
        held.passed.append(passed)
    return passed


class Rename:
    """Rewrites the descriptor spellings in one output stream back to the client's.

    Only the exact spellings the wrapper chose are rewritten, and only where no name byte
    follows. The stream may split a spelling anywhere: the last `keep` bytes wait for the
    next chunk (or `flush`). Output caps apply to what comes out of here."""

    def __init__(self, names):
        self.names = {key.encode(): value.encode("utf-8", "surrogateescape")
                      for key, value in names.items()}
        spellings = sorted(self.names, key=len, reverse=True)
        self.pattern = re.compile(b"(" + b"|".join(map(re.escape, spellings)) + b")"
                                  + _NAME_TAIL)
        self.keep = len(spellings[0]) + 1
        self.carry = b""

    def _name(self, match):
        return self.names[match.group(1)]

    def feed(self, chunk):
        data = self.carry + chunk
        cut = len(data) - self.keep  # a match starting before `cut` is wholly in `data`
        if cut <= 0:
            self.carry = data
            return b""
        out, position = [], 0
        for match in self.pattern.finditer(data):
            if match.start() >= cut:
                break
            out += [data[position:match.start()], self._name(match)]
            position = match.end()
        end = max(cut, position)
        out.append(data[position:end])
        self.carry = data[end:]
        return b"".join(out)

    def flush(self):
        data, self.carry = self.carry, b""
        return self.pattern.sub(self._name, data)
