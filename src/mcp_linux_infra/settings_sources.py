"""One resolution of the settings for the server and the CLI: the config file, `.env` and the
environment, each name checked (an unknown one is an error naming the closest valid one), and
where each effective value came from (`config show`). Precedence, highest first: command-line
options, the environment, `.env` in the working directory, the config file, the defaults."""

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values
from pydantic import ValidationError
from pydantic_settings import SettingsError

from mcp_linux_infra.config_home import CONFIG_VAR, LAYOUT_VAR, home
from mcp_linux_infra.errors import EXIT_CONFIG, EXIT_SYSTEM, UserError
from mcp_linux_infra.settings import Settings

PREFIX = "LINUX_MCP_"
DOTENV = Path(".env")


@dataclass(frozen=True)
class Resolved:
    settings: Settings
    origins: dict[str, str]  # field -> "default", "environment", ".env PATH", "file PATH", ...


def _closest(name: str, valid: list[str]) -> str:
    match = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    return f"; did you mean {match[0]}?" if match else ""


# Settings that are gone, and what took their place.
REMOVED = {"http_tokens": "bearer tokens live in the tokens file now (LINUX_MCP_TOKENS_FILE); "
           "make each with `mcp-linux-infra tokens new NAME` and remove this setting"}


def _check_names(names: list[str], valid: list[str], where: str) -> None:
    for name in names:
        gone = REMOVED.get(name.removeprefix(PREFIX).lower())
        if gone:
            raise UserError(f"{name} in {where} is no longer a setting: {gone}",
                            exit_code=EXIT_CONFIG)
        if name not in valid:
            raise UserError(f"unknown setting {name} in {where}{_closest(name, valid)}",
                            hint="every setting is in .env.example", exit_code=EXIT_CONFIG)


def _config_file(environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The config file and whether it was named (then it must exist)."""
    named = environ.get(CONFIG_VAR)
    if named:
        return Path(named).expanduser().absolute(), True
    return home(environ).config_file, False


def _read_toml(path: Path, named: bool) -> dict:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        if named:
            raise UserError(f"config file {path} does not exist ({CONFIG_VAR})",
                            exit_code=EXIT_CONFIG) from None
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path}: {exc}", exit_code=EXIT_CONFIG) from None
    except OSError as exc:
        raise UserError(f"config file {path}: {exc.strerror}", exit_code=EXIT_SYSTEM) from None


def settings_class(config_file: Path) -> type[Settings]:
    """Settings whose config-file source reads `config_file`."""
    return type("Settings", (Settings,), {
        "model_config": {**Settings.model_config, "toml_file": config_file},
        "__module__": Settings.__module__})


def resolve(overrides: Mapping[str, object] | None = None) -> Resolved:
    """The effective settings (from this process's environment and working directory), or a
    UserError (exit 3) naming the first bad name or value."""
    environ = os.environ
    overrides = dict(overrides or {})
    fields = list(Settings.model_fields)
    env_names = [f"{PREFIX}{f.upper()}" for f in fields]
    home(environ)  # a bad layout is refused before anything else
    _check_names([n.upper() for n in environ if n.upper().startswith(PREFIX)],
                 env_names + [LAYOUT_VAR, CONFIG_VAR], "the environment")
    dotenv_path = DOTENV.absolute()
    dotenv = {k.upper(): v for k, v in dotenv_values(dotenv_path).items()} \
        if dotenv_path.is_file() else {}
    _check_names([n for n in dotenv if n.startswith(PREFIX)], env_names, f".env {dotenv_path}")
    config_path, named = _config_file(environ)
    toml = _read_toml(config_path, named)
    _check_names(list(toml), fields, f"config file {config_path}")

    origins = {}
    for field in fields:
        name = f"{PREFIX}{field.upper()}"
        origins[field] = ("command line" if field in overrides else
                          "environment" if name in {n.upper() for n in environ} else
                          f".env {dotenv_path}" if name in dotenv else
                          f"file {config_path}" if field in toml else "default")
    try:
        settings = settings_class(config_path)(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if first["loc"]:
            field = str(first["loc"][0])
            where = f"setting {PREFIX}{field.upper()} (from {origins.get(field, 'default')})"
        else:  # a rule across settings: the sources of the settings it names
            named = [n.lower() for n in re.findall(rf"{PREFIX}(\w+)", message)]
            where = "settings (" + ", ".join(
                f"{PREFIX}{n.upper()} from {origins[n]}" for n in named if n in origins) + ")"
        raise UserError(f"{where}: {message}", hint="see .env.example",
                        exit_code=EXIT_CONFIG) from None
    except SettingsError as exc:  # a source could not decode a value (JSON)
        named = re.search(r'field "(\w+)"', str(exc))
        field = named.group(1) if named else ""
        reason = exc.__cause__ or exc
        raise UserError(f"setting {PREFIX}{field.upper()} (from {origins.get(field, '?')}): "
                        f"not valid JSON ({reason})", hint="see .env.example",
                        exit_code=EXIT_CONFIG) from None
    return Resolved(settings, origins)
