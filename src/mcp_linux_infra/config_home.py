"""Where settings, keys and state live when no setting says otherwise: never the working
directory. A user's XDG directories, or a system service's /etc and /var/lib, chosen
explicitly (docs/OPERATIONS.md, "Configuration")."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mcp_linux_infra.errors import EXIT_CONFIG, UserError

APP = "mcp-linux-infra"
# Read before the settings themselves, so they are not settings: which layout, which file.
LAYOUT_VAR = "LINUX_MCP_LAYOUT"
CONFIG_VAR = "LINUX_MCP_CONFIG"
LAYOUTS = ("user", "system")


@dataclass(frozen=True)
class Home:
    layout: str
    config: Path  # the config file's directory, and the keys' default home
    state: Path   # proposals, known_hosts, the audit log, the lab's state

    @property
    def config_file(self) -> Path:
        return self.config / "config.toml"


def _xdg(environ: Mapping[str, str], name: str, fallback: str) -> Path:
    """An XDG base directory: the variable when it is absolute (the spec ignores relative
    ones), else the fallback under the home directory."""
    value = environ.get(name, "")
    return Path(value) if os.path.isabs(value) else Path.home() / fallback


def home(environ: Mapping[str, str] = os.environ) -> Home:
    layout = environ.get(LAYOUT_VAR, "user") or "user"
    if layout == "system":
        return Home("system", Path("/etc") / APP, Path("/var/lib") / APP)
    if layout != "user":
        raise UserError(f"{LAYOUT_VAR}={layout!r}: the layout is one of {', '.join(LAYOUTS)}",
                        exit_code=EXIT_CONFIG)
    return Home("user", _xdg(environ, "XDG_CONFIG_HOME", ".config") / APP,
                _xdg(environ, "XDG_STATE_HOME", ".local/state") / APP)
