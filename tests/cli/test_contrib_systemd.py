"""contrib/systemd: the unit is one systemd accepts without a warning, starts a command line
the CLI accepts, and its env file holds only real settings (and never the operator key)."""

import shlex
import shutil
import subprocess

import pytest
from paths_support import REPO

from mcp_linux_infra.cli import build_parser
from mcp_linux_infra.settings import Settings

UNIT = REPO / "contrib/systemd/mcp-linux-infra.service"
ENV = REPO / "contrib/systemd/env.example"
INSTALLED_CLI = "/opt/mcp-linux-infra/.venv/bin/mcp-linux-infra"


def directive(name: str) -> str:
    return next(line.split("=", 1)[1] for line in UNIT.read_text().splitlines()
                if line.startswith(name + "="))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_unit_without_a_warning(tmp_path):
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(INSTALLED_CLI, str(REPO / ".venv/bin/mcp-linux-infra")))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_the_unit_serves_http_with_the_env_files_settings():
    argv = shlex.split(directive("ExecStart"))
    assert argv[0] == INSTALLED_CLI
    args = build_parser().parse_args(argv[1:])
    assert (args.group, args.transport) == ("serve", "http")
    assert directive("EnvironmentFile") == "/etc/mcp-linux-infra/env"
    settings = [line for line in UNIT.read_text().splitlines() if not line.startswith("#")]
    assert not [line for line in settings if "operator" in line.lower().replace(
        "operations.md", "")]


def test_the_env_file_holds_settings_only(tmp_path):
    names = {f"LINUX_MCP_{n.upper()}" for n in Settings.model_fields}
    keys = [line.split("=", 1)[0] for line in ENV.read_text().splitlines()
            if line and not line.startswith("#")]
    assert keys and set(keys) <= names
    assert "LINUX_MCP_OPERATOR_KEY" not in keys
    settings = Settings(_env_file=ENV)
    assert str(settings.tokens_file) == "/etc/mcp-linux-infra/tokens.json"
    assert str(settings.state_dir) == "/var/lib/mcp-linux-infra"
    assert str(settings.keys_dir) == "/etc/mcp-linux-infra/keys"


CONSOLE_UNIT = REPO / "contrib/systemd/mcp-linux-infra-console.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_console_unit_without_a_warning(tmp_path):
    unit = tmp_path / CONSOLE_UNIT.name
    unit.write_text(CONSOLE_UNIT.read_text().replace(INSTALLED_CLI,
                                                     str(REPO / ".venv/bin/mcp-linux-infra")))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_the_console_unit_serves_the_console_without_keys():
    lines = CONSOLE_UNIT.read_text().splitlines()
    start = next(line.split("=", 1)[1] for line in lines if line.startswith("ExecStart="))
    argv = shlex.split(start)
    assert argv[0] == INSTALLED_CLI and build_parser().parse_args(argv[1:]).group == "console"
    assert "InaccessiblePaths=-/etc/mcp-linux-infra/keys" in lines
    assert "EnvironmentFile=/etc/mcp-linux-infra/env" in lines
