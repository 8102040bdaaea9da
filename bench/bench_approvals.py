#!/usr/bin/env python3
"""Verification cost of an approval on the target: pra-run's `signature` time per envelope.

Not a test. Runs the source-tree pra-run in a test root (tests/pra_support.py) with
envelopes of 1, 2, 4, 8 and 16 signatures by distinct enrolled operators (ed25519 by
ssh-keygen, and WebAuthn by the tests' simulated authenticator), for an action that is
already satisfied, and prints medians of the time pra-run spent verifying (its log's
`durations_ms.signature`: decoding, and per signature `ssh-keygen -Y find-principals` then
`-Y verify`) and of the whole process:

    python3 bench/bench_approvals.py [--iterations 10]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pra_support import KEYGEN, NAMESPACE, Keys, TestRoot, canonical
from sshsig_support import Authenticator

COUNTS = (1, 2, 4, 8, 16)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as keydir:
        keys = Keys(Path(keydir))
        root = TestRoot(keys)
        try:
            ed_keys = []
            for index in range(16):
                path = Path(keydir) / f"op{index}"
                subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                               check=True)
                ed_keys.append(path)
            passkeys = [Authenticator("approve.example.com") for _ in range(16)]
            lines = [f"op{i} {' '.join(Path(str(p) + '.pub').read_text().split()[:2])}"
                     for i, p in enumerate(ed_keys)]
            lines += [f'pk{i} namespaces="{NAMESPACE}" {a.public_line()}'
                      for i, a in enumerate(passkeys)]
            allowed = root.path / "etc/mcp-infra/allowed_signers"
            allowed.write_text(allowed.read_text() + "\n".join(lines) + "\n")
            open(root.file("a"), "w").close()
            print(f"{'kind':<9} {'sigs':>4} {'verify ms':>10} {'per sig':>8} {'process ms':>11}")
            for kind in ("ed25519", "webauthn"):
                for count in COUNTS:
                    verify, total = [], []
                    for _ in range(args.iterations):
                        now = int(time.time())
                        text = canonical({"v": 2, "id": "bench", "approvals": min(count, 9),
                                          "not_before": now - 10, "not_after": now + 600,
                                          "steps": [{"host": "target-1", "action": "touch_file",
                                                     "params": {"file": root.file("a")},
                                                     "nonce": os.urandom(16).hex()}]})
                        if kind == "ed25519":
                            sigs = [subprocess.run(
                                [KEYGEN, "-Y", "sign", "-f", str(p), "-n", NAMESPACE, "-"],
                                input=text.encode(), capture_output=True, check=True
                            ).stdout.decode() for p in ed_keys[:count]]
                        else:
                            sigs = [a.sign(text.encode()) for a in passkeys[:count]]
                        started = time.monotonic()
                        done = root.pra_run(json.dumps({"document": text, "signatures": sigs,
                                                        "step": 0}).encode())
                        total.append((time.monotonic() - started) * 1000)
                        assert done.returncode == 0, done.stderr
                        verify.append(root.log()[-1]["durations_ms"]["signature"])
                    med = statistics.median(verify)
                    print(f"{kind:<9} {count:>4} {med:>10.0f} {med / count:>8.1f} "
                          f"{statistics.median(total):>11.0f}")
        finally:
            root.cleanup()


if __name__ == "__main__":
    main()
