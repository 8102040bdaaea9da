"""The artifacts people install, built from this checkout the way a release is: `python -m
build` (an sdist, then the wheel from that sdist), and an installed copy in a new virtualenv."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from paths_support import REPO

COLLECTION = "ansible_collections/mcp_linux_infra/target"


@dataclass(frozen=True)
class Artifacts:
    sdist: Path
    wheel: Path

    def wheel_names(self) -> list[str]:
        with zipfile.ZipFile(self.wheel) as archive:
            return archive.namelist()

    def extract_collection(self, dest: Path) -> Path:
        """The wheel's collection tree under dest (dest/ansible_collections/...)."""
        with zipfile.ZipFile(self.wheel) as archive:
            archive.extractall(dest, [n for n in archive.namelist()
                                      if n.startswith(COLLECTION + "/")])
        return dest / COLLECTION


def build(out: Path) -> Artifacts:
    """sdist and wheel in `out`, in build's isolated environment (setuptools from the
    index or the pip cache, as pyproject.toml asks)."""
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "build", "--outdir",
                           str(out), str(REPO)], capture_output=True, text=True, timeout=600,
                          check=False, cwd=out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return Artifacts(sdist=next(out.glob("*.tar.gz")), wheel=next(out.glob("*.whl")))


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a new user: a home and XDG directories of its own, no
    LINUX_MCP_*, ANSIBLE_* or virtualenv of this process."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LINUX_MCP_", "XDG_", "ANSIBLE_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_STATE_HOME=str(home / ".local/state"), COLUMNS="120", **extra)
    return env


def install(wheel: Path, venv: Path) -> Path:
    """A new virtualenv with the wheel installed (its dependencies from the index or the
    pip cache); the path of its mcp-linux-infra."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    done = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet",
                           str(wheel)], capture_output=True, text=True, timeout=900,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return venv / "bin/mcp-linux-infra"
