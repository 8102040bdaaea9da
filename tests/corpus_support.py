"""The read-only tier's adversarial corpus and a transport-independent case runner.

`run_case(runner, case, canaries)` works with any runner callable
`runner(command: bytes | None, stdin: bytes | None) -> (exit_code, stdout, stderr)`:
the local test passes one that runs the wrapper script as an unprivileged user; a lab test
can pass one that goes through real `ssh mcp-reader@target` (command None = shell request).

Corpus records (readonly_attacks.jsonl): {"cmd": TEXT | null, "cmd_hex": HEX (raw bytes,
instead of cmd), "stdin": TEXT (for mcp:batch), "cat": CATEGORY, "expect": "refused" |
"allowed-harmless"}. Placeholders {canary_dir}, {canary_name}, {secret_file},
{secret_link}, {etc_secret}, {write_target}, {listener_port} are filled from the canaries.
"""

import json
import re
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "security" / "corpus" / "readonly_attacks.jsonl"
REFUSED = 126
PLACEHOLDER = re.compile(r"\{(canary_dir|canary_name|secret_file|secret_link|etc_secret|"
                         r"write_target|listener_port)\}")
HOST_DEPENDENT = {"command_not_installed"}


def load_corpus(path=CORPUS):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Canaries:
    """What an escape would disturb: secrets that must never be printed, files that must
    never appear, a listener that must never be reached, processes that must not linger."""

    def __init__(self, values, secrets, must_not_exist, connections=lambda: 0,
                 leftover_processes=list):
        self.values = values
        self.secrets = [s.encode() if isinstance(s, str) else s for s in secrets]
        self.must_not_exist = must_not_exist
        self.connections = connections
        self.leftover_processes = leftover_processes

    def expand(self, text):
        return PLACEHOLDER.sub(lambda m: str(self.values[m.group(1)]), text)


def command_bytes(case, canaries):
    if case.get("cmd_hex"):
        return bytes.fromhex(case["cmd_hex"])
    if case["cmd"] is None:
        return None
    return canaries.expand(case["cmd"]).encode()


def _refusal(stderr):
    lines = stderr.decode("utf-8", "replace").splitlines()
    if len(lines) != 1:
        return None
    try:
        return json.loads(lines[0])["mcp_refusal"]
    except (ValueError, KeyError, TypeError):
        return None


def _outcome_problems(case, code, stdout, stderr):
    problems = []
    batch = case.get("stdin") is not None and code == 0
    if batch:
        statuses = [r.get("status") for r in json.loads(stdout)["results"]]
        if case["expect"] == "refused" and set(statuses) != {"refused"}:
            problems.append(f"batch entries not all refused: {statuses}")
        return problems
    refusal = _refusal(stderr) if code == REFUSED else None
    if case["expect"] == "refused":
        if refusal is None:
            problems.append(f"expected a refusal, got exit {code}")
        elif stdout:
            problems.append("refused but printed %d bytes" % len(stdout))
    elif refusal is not None and refusal.get("reason") not in HOST_DEPENDENT:
        problems.append("expected allowed, refused: {}".format(refusal.get("reason")))
    return problems


def run_case(runner, case, canaries, time_limit_s=25.0):
    """Run one corpus case; return a list of problems (empty: the case held)."""
    command = command_bytes(case, canaries)
    stdin = canaries.expand(case["stdin"]).encode() if case.get("stdin") is not None else None
    before = canaries.connections()
    start = time.monotonic()
    try:
        code, stdout, stderr = runner(command, stdin)
    except Exception as error:  # noqa: BLE001 - a runner failure is a finding, not a crash
        return [f"runner failed: {error!r}"]
    elapsed = time.monotonic() - start
    problems = _outcome_problems(case, code, stdout, stderr)
    for secret in canaries.secrets:
        if secret in stdout or secret in stderr:
            problems.append("canary secret in output")
    for path in canaries.must_not_exist:
        if Path(path).exists():
            problems.append(f"file created: {path}")
    if canaries.connections() != before:
        problems.append("listener was reached")
    leftovers = canaries.leftover_processes()
    if leftovers:
        problems.append(f"processes left behind: {leftovers}")
    if elapsed > time_limit_s:
        problems.append(f"took {elapsed:.1f}s")
    return problems
