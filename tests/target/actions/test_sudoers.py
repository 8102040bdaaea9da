"""The one sudo rule of the action tier."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from pra_support import SYSTEM

SUDOERS = SYSTEM / "sudoers.d" / "pra-runner"


def rules():
    lines = [line.strip() for line in SUDOERS.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_file_name_is_read_by_sudo():
    """sudo skips files in sudoers.d whose name contains a dot or ends in '~'."""
    assert "." not in SUDOERS.name and not SUDOERS.name.endswith("~")


def test_exactly_one_rule_with_no_arguments():
    user_rules = [line for line in rules() if not line.startswith("Defaults")]
    assert user_rules == ['pra-runner ALL=(root) NOPASSWD: /usr/local/sbin/pra-run ""']


def test_defaults_apply_to_pra_runner_only():
    defaults = [line for line in rules() if line.startswith("Defaults")]
    assert defaults and all(line.startswith("Defaults:pra-runner ") for line in defaults)
    settings = {line.split(None, 1)[1] for line in defaults}
    assert {"env_reset", "!env_keep", "!setenv", "!requiretty"} <= settings
    assert 'secure_path="/usr/sbin:/usr/bin:/sbin:/bin"' in settings


@pytest.mark.skipif(shutil.which("visudo") is None, reason="visudo not installed")
def test_visudo_accepts_it():
    proc = subprocess.run(["visudo", "-cf", str(SUDOERS)], capture_output=True, check=False,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
