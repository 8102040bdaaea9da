#!/usr/bin/env python3
"""Wrapper overhead: the same command run directly and through mcp-wrapper, as a ratio.

Not a test. Runs the source-tree wrapper through its test root (so nothing needs to be
installed), with the default policy, and prints a table of medians:

    python3 bench/bench_wrapper.py [--iterations 50]

The library is byte-compiled first, as the role does on the targets (the wrapper itself
never writes bytecode). The overhead is what a diagnosis pays per command on the target
(interpreter start, imports, policy load and checks, supervision); the first row is the
bare interpreter for scale. The SSH round trip is measured elsewhere.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from wrapper_support import LIB, WRAPPER, make_root, remove_root

COMMANDS = ["uptime", "df -h", "free -m", "cat /proc/loadavg", "ps aux", "ip -br a",
            "ss -tln", "mcp:version"]


def timed(argv, env):
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   stdin=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def median_ms(samples):
    return statistics.median(samples) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    args = parser.parse_args()
    subprocess.run(["/usr/bin/python3", "-m", "compileall", "-q", str(LIB)], check=True)
    root = make_root()
    plain_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    try:
        print("%-22s %10s %12s %9s" % ("command", "direct ms", "wrapper ms", "ratio"))
        floor = [timed(["/usr/bin/python3", "-IS", "-c", "pass"], plain_env)
                 for _ in range(args.iterations)]
        print("%-22s %10.1f %12s %9s" % ("(python3 -IS -c pass)", median_ms(floor), "-", "-"))
        for command in COMMANDS:
            wrapper_env = dict(plain_env, MCP_INFRA_TEST_ROOT=str(root), SSH_ORIGINAL_COMMAND=command)
            through = [timed([str(WRAPPER)], wrapper_env) for _ in range(args.iterations)]
            if command.startswith("mcp:"):
                print("%-22s %10s %12.1f %9s" % (command, "-", median_ms(through), "-"))
                continue
            direct = [timed(command.split(), plain_env) for _ in range(args.iterations)]
            print("%-22s %10.1f %12.1f %8.1fx" % (command, median_ms(direct), median_ms(through),
                                                  median_ms(through) / median_ms(direct)))
        print("(medians of %d runs; python %s; %d CPUs)" % (args.iterations,
                                                           sys.version.split()[0], os.cpu_count()))
    finally:
        remove_root(root)


if __name__ == "__main__":
    main()
