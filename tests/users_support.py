"""Real, throwaway users for tests that run something as another uid.

A test never borrows an existing account (`nobody`) or a fixed uid: either may belong to
something else on the machine, whose processes a test would then count or signal. Instead,
`made_users(n)` creates `n` users with `useradd` (useradd picks the uid, and a group of the
same name), with names unique to this test session, optionally in supplementary groups
(`adm`, `systemd-journal`, as mcp-reader is), and removes them afterwards, first ending any
process still running under their uids (those can only be the test's own).

The uids come from a range of their own (IDS): containers on the same machine without
private users (the lab's nspawn targets) share the host's uid space, and their own system
and regular users (mcp-reader...) take uids from the usual ranges, by their own passwd. The
range lies above the ranges systemd gives containers (524288-1879048191) and below the
ones it reserves for "foreign" and special ids.
"""

import grp
import os
import pwd
import secrets
import signal
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USERADD = "/usr/sbin/useradd"
IDS = (1900000000, 1999999999)
USERDEL = "/usr/sbin/userdel"
# One token per test session: names never clash with another session's users.
SESSION = secrets.token_hex(3)
_counter = [0]


def can_create_users():
    return os.geteuid() == 0 and os.path.exists(USERADD)


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    groups: tuple  # supplementary gids

    def preexec(self):
        """A preexec_fn that becomes this user (groups first, uid last)."""
        def drop():
            os.setgroups(list(self.groups))
            os.setgid(self.gid)
            os.setuid(self.uid)
        return drop


def processes_of(uid):
    """Pids of the live (not zombie) processes whose real uid is `uid`."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path("/proc", entry, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if (fields.get("Uid", "").split()[:1] == [str(uid)]
                and not fields.get("State", "").strip().startswith("Z")):
            found.add(int(entry))
    return found


def _remove(name):
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    for pid in processes_of(uid):  # the uid is this test's own: so is every process of it
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    subprocess.run([USERDEL, name], check=True, capture_output=True, timeout=60)


@contextmanager
def made_users(count, groups=()):
    """`count` new users (User), each in its own new group and in `groups`; removed after."""
    names = []
    try:
        for _ in range(count):
            _counter[0] += 1
            name = f"mcpt-{SESSION}-{_counter[0]}"
            argv = [USERADD, "--user-group", "--no-create-home", "--no-log-init",
                    "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"]
            for key in ("UID", "GID"):
                argv += ["-K", f"{key}_MIN={IDS[0]}", "-K", f"{key}_MAX={IDS[1]}"]
            if groups:
                argv += ["--groups", ",".join(groups)]
            done = subprocess.run(argv + [name], check=False, capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode == 0, f"useradd {name}: {done.stderr}"
            names.append(name)
        users = []
        for name in names:
            entry = pwd.getpwnam(name)
            extra = tuple(grp.getgrnam(g).gr_gid for g in groups)
            users.append(User(name, entry.pw_uid, entry.pw_gid, extra))
        yield users
    finally:
        for name in names:
            _remove(name)
