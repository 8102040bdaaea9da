#!/usr/bin/env python3
"""The cost of a jump host, as ratios measured in one run on a lab: a fresh connection,
authentication and `mcp:version`, direct and through a bastion, ours (the pool) and
OpenSSH's (`ssh -W` through the jump user, which is what `-J` does).

Not a test. Needs root (the lab). The lab, the bastion and the measurement are those of
tests/integration/test_bastion_lab.py (prefix `ibs`, free ports, always `lab down`); this
runs its measurement with more rounds:

    .venv/bin/python bench/bench_jump.py [--rounds 30]

Measured (2 shared cores, other work running; 30 rounds): ours direct 331 ms, through the
jump 520 ms (x1.57); OpenSSH direct 671 ms, through the jump (ssh -W) 1339 ms (x1.99);
ours/OpenSSH 0.49 direct, 0.39 through the jump. The jump costs one more handshake and
login (on the bastion) plus a forwarded channel; OpenSSH pays a second process as well.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    env = dict(os.environ, MCP_BENCH_ROUNDS=str(args.rounds))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
         "tests/integration/test_bastion_lab.py", "-k", "measured"],
        cwd=REPO, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
