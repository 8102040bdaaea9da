"""The check-to-use race on path operands, shared by the local and the lab test.

A second uid owns a directory under a read root and swaps, in a tight loop with
renameat2(RENAME_EXCHANGE), a public file with a symlink to a denied canary file, and a
public directory with a symlink to a denied directory (whose listing holds a canary name).
Meanwhile the wrapper serves thousands of reading and listing requests naming the public
side. Whatever the timing, the wrapper may answer with the public data or refuse (it saw the
symlink): the canary's content or name must never appear.

Layout (`base` is under a read root; `denied` is on the policy's deny list):
  denied/f            the canary file, readable by the reader (never by the racer)
  denied/CANARY_NAME  an entry whose name is the listing canary
  w/                  mode 0777, not sticky: the racer's playground
  w/f    <-> w/f.swap      public file   <-> symlink to denied/f
  w/d    <-> w/d.swap      public dir    <-> symlink to denied   (w/d/f public)
"""

import base64
import json

# Run as the racing uid: `python3 -c RACER W DENIED`. Builds its side of the layout, says
# "ready" once, then swaps both pairs until it is killed.
RACER = r"""
import ctypes, os, sys
w, denied = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
os.umask(0o022)
with open(w + "/f", "w") as out:
    out.write("PUBLIC-FILE\n")
os.symlink(denied + "/f", w + "/f.swap")
os.mkdir(w + "/d")
with open(w + "/d/f", "w") as out:
    out.write("PUBLIC-DIR-FILE\n")
os.symlink(denied, w + "/d.swap")
pairs = [((w + "/f").encode(), (w + "/f.swap").encode()),
         ((w + "/d").encode(), (w + "/d.swap").encode())]
print("ready", flush=True)
while True:
    for a, b in pairs:
        if libc.renameat2(-100, a, -100, b, 2) != 0:
            raise OSError(ctypes.get_errno(), "renameat2")
"""

# Requests naming the public side, every reading and listing form (head/tail headers,
# grep -H, the intermediate-component swap w/d/f, listings that follow a command-line link).
TEMPLATES = [
    "cat {w}/f", "head -v -n 3 {w}/f", "grep -H . {w}/f", "tail -n 2 {w}/f", "sort {w}/f",
    "nl {w}/f", "cat {w}/d/f", "tac {w}/d/f", "head -c 64 {w}/d/f", "ls {w}/d",
    "ls -l {w}/d", "ls -la {w}/d/f", "find {w}/d", "du -a {w}/d", "stat {w}/d/f", "wc {w}/f",
]


def requests(w, count):
    return [TEMPLATES[i % len(TEMPLATES)].format(w=w) for i in range(count)]


def batch_frame(ident, commands):
    document = {"commands": [{"id": f"e{i}", "command": c} for i, c in enumerate(commands)]}
    return {"id": ident, "command": "mcp:batch",
            "stdin": base64.b64encode(json.dumps(document).encode()).decode()}


def outputs(answer, command):
    """(command, exit, stdout bytes, stderr bytes) for one session answer to `command` (a
    batch answer gives one row per entry)."""
    out = base64.b64decode(answer["stdout"])
    err = base64.b64decode(answer["stderr"])
    if command == "mcp:batch" and answer["exit"] == 0:
        rows = []
        for result in json.loads(out)["results"]:
            refusal = json.dumps(result["refusal"]) if result["refusal"] else ""
            rows.append((result["command"], result["exit_code"], result["stdout"].encode(),
                         (result["stderr"] + refusal).encode()))
        return rows
    return [(command, answer["exit"], out, err)]


class Tally:
    """What the requests saw: leaks (must stay empty), and evidence that the race ran."""

    def __init__(self, canaries):
        self.canaries = [c.encode() for c in canaries]
        self.leaks = []
        self.count = 0
        self.public = 0
        self.refused_denied = 0

    def add(self, command, code, stdout, stderr):
        self.count += 1
        for canary in self.canaries:
            if canary in stdout or canary in stderr:
                self.leaks.append((command, code, (stdout + stderr)[:300]))
        if b"PUBLIC" in stdout:
            self.public += 1
        if b'"path_denied"' in stderr:
            self.refused_denied += 1

    def summary(self):
        return {"requests": self.count, "public": self.public,
                "refused_denied": self.refused_denied, "leaks": len(self.leaks)}
