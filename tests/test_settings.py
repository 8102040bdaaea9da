"""Settings (settings.py): the durations they take; one config home (settings_sources.py,
config_home.py): absolute defaults, precedence, sources, unknown names."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from paths_support import REPO

from mcp_linux_infra import errors
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.settings import Settings, parse_ttl
from mcp_linux_infra.settings_sources import resolve


@pytest.mark.parametrize("text, seconds", [("900", 900), ("900s", 900), ("15m", 900),
                                           ("1h", 3600), (" 2m ", 120)])
def test_parse_ttl(text, seconds):
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "15x", "-5m", "1.5h", "m"])
def test_parse_ttl_refuses(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_ttl(text)


# --- one config home (settings_sources.py, config_home.py) ---


@pytest.fixture
def clean(tmp_path, monkeypatch):
    """No LINUX_MCP_* or XDG_* from outside; a home and a working directory of its own."""
    for name in list(os.environ):
        if name.startswith(("LINUX_MCP_", "XDG_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


def test_the_defaults_are_absolute_under_xdg_or_the_system(clean, monkeypatch):
    s = resolve().settings
    assert s.keys_dir == clean / "home/.config/mcp-linux-infra/keys"
    assert s.state_dir == clean / "home/.local/state/mcp-linux-infra"
    assert s.known_hosts == s.state_dir / "known_hosts" and s.audit_log.parent == s.state_dir
    assert s.lab_inventory == s.state_dir / "lab/inventory.ini"
    monkeypatch.setenv("XDG_STATE_HOME", str(clean / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative")  # ignored, as the spec says
    s = resolve().settings
    assert s.state_dir == clean / "xdg-state/mcp-linux-infra"
    assert s.keys_dir == clean / "home/.config/mcp-linux-infra/keys"
    monkeypatch.setenv("LINUX_MCP_LAYOUT", "system")
    s = resolve().settings
    assert (s.keys_dir, s.state_dir) == (Path("/etc/mcp-linux-infra/keys"),
                                         Path("/var/lib/mcp-linux-infra"))
    for name in Settings.model_fields:
        value = getattr(s, name)
        for path in value if isinstance(value, list) else [value]:
            assert not isinstance(path, Path) or path.is_absolute(), name


def test_precedence_and_where_each_value_came_from(clean, monkeypatch):
    config = clean / "home/.config/mcp-linux-infra/config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('state_dir = "state"\nconnect_timeout = 7\nreader_sessions = 2\n'
                      'approver = "file"\n[[webhooks]]\nurl = "https://hooks.example/k"\n')
    (clean / "work/.env").write_text("LINUX_MCP_CONNECT_TIMEOUT=8\nLINUX_MCP_APPROVER=dotenv\n")
    monkeypatch.setenv("LINUX_MCP_APPROVER", "environment")
    r = resolve({"http_port": 9999})
    s = r.settings
    assert s.state_dir == config.parent / "state"  # relative to the file
    assert (s.reader_sessions, s.connect_timeout, s.approver, s.http_port) == (
        2, 8.0, "environment", 9999)
    assert s.webhooks[0].url == "https://hooks.example/k"
    assert r.origins["reader_sessions"] == f"file {config}"
    assert r.origins["connect_timeout"] == f".env {clean / 'work/.env'}"
    assert r.origins["approver"] == "environment"
    assert r.origins["http_port"] == "command line" and r.origins["lab_dir"] == "default"


def test_unknown_names_are_refused_with_the_closest(clean, monkeypatch):
    monkeypatch.setenv("LINUX_MCP_STATEDIR", "/x")
    with pytest.raises(UserError, match="did you mean LINUX_MCP_STATE_DIR") as refused:
        resolve()
    assert refused.value.exit_code == errors.EXIT_CONFIG
    monkeypatch.delenv("LINUX_MCP_STATEDIR")
    (clean / "work/.env").write_text("LINUX_MCP_APROVER=x\n")
    with pytest.raises(UserError, match=r"\.env .*did you mean LINUX_MCP_APPROVER"):
        resolve()


def test_config_show_masks_secrets(clean, monkeypatch):
    monkeypatch.setenv("LINUX_MCP_WEBHOOKS", '[{"url": "https://hooks.example/SECRET"}]')
    done = subprocess.run([sys.executable, "-m", "mcp_linux_infra", "config", "show", "--json"],
                          capture_output=True, text=True, check=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(REPO / "src")))
    shown = json.loads(done.stdout)
    assert set(shown) == set(Settings.model_fields) and "SECRET" not in done.stdout
    assert shown["webhooks"] == {"value": "(1 hidden)", "source": "environment"}
    assert shown["state_dir"]["source"] == "default"


def test_every_setting_is_in_env_example():
    text = (REPO / ".env.example").read_text()
    missing = [n for n in Settings.model_fields if f"LINUX_MCP_{n.upper()}=" not in text]
    assert not missing


def test_the_exit_codes_are_documented():
    table = (REPO / "docs/OPERATIONS.md").read_text().split("## Exit codes", 1)[1]
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)}
    assert documented == {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
