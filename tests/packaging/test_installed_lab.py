"""What a new user does, on a real lab target: build the wheel (from the sdist), install it into
a new virtualenv, and with that installed copy only, from `/`, with a home of its own:
`--version` and `doctor`, `keys init`, `lab up` one target, `deploy` it, and `doctor` says
the reader and action keys authenticate and the wrapper answers. Nothing is written to the
working directory; the lab is always taken down."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from lab_support import require_lab
from net_support import free_port
from packaging_support import build, clean_env, install

pytestmark = pytest.mark.lab

LAB_PREFIX = "ipk"


def _listing(top: Path) -> set[str]:
    return set(os.listdir(top))


def test_an_installed_copy_deploys_a_lab_target(tmp_path):
    require_lab()
    cli = install(build(tmp_path / "dist").wheel, tmp_path / "venv")
    home = tmp_path / "home"
    env = clean_env(home, LINUX_MCP_LAB_NAME_PREFIX=LAB_PREFIX,
                    LINUX_MCP_LAB_PORT_BASE=str(free_port()))
    before = _listing(Path("/"))

    def run(*argv: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([str(cli), *argv], env=env, cwd="/", capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)

    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("mcp-linux-infra "), version
    empty = run("doctor")  # no inventory yet: one line that says what to do, exit 2
    assert empty.returncode == 2 and len(empty.stderr.splitlines()) == 1, empty.stderr
    assert "no inventory" in empty.stderr and "lab up" in empty.stderr
    assert run("keys", "init").returncode == 0
    try:
        up = run("lab", "up", "--hosts", "1")
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        deployed = run("deploy", "--json")
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        recap = json.loads(deployed.stdout)
        (host, counts), = recap["hosts"].items()
        assert host.startswith(LAB_PREFIX) and counts["failed"] == counts["unreachable"] == 0
        assert counts["changed"] > 0
        again = run("deploy", host, "--check", "--json")  # idempotent: nothing left to change
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert json.loads(again.stdout)["hosts"][host]["changed"] == 0
        doctor = run("doctor", host, "--json")
        report = json.loads(doctor.stdout)
        checks = {c["check"]: c["status"] for c in report["hosts"][0]["checks"]}
        assert doctor.returncode == 0, doctor.stdout
        assert checks["reader_key"] == checks["action_key"] == checks["versions"] == "ok"
    finally:
        run("lab", "down", timeout=300)
    assert _listing(Path("/")) == before
    assert (home / ".local/state/mcp-linux-infra/deploy.log").is_file()
