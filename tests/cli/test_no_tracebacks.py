"""Bad input never ends in a traceback: a bad value for every setting (generated from the
Settings model) and bad arguments for every subcommand (generated from the argparse tree),
each through the real CLI in a subprocess: one line on stderr, the documented exit code
(errors.py, docs/OPERATIONS.md "Exit codes"), and nothing written."""

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from net_support import free_port
from paths_support import REPO

from mcp_linux_infra.cli import build_parser, port
from mcp_linux_infra.cli_examples import walk
from mcp_linux_infra.errors import EXIT_CONFIG, EXIT_HOST, EXIT_SYSTEM, EXIT_USAGE
from mcp_linux_infra.settings import Settings

CLI = [sys.executable, "-m", "mcp_linux_infra"]
# Tried in this order; the first one a setting refuses is its bad value.
CANDIDATES = ("-bad value!", "")


def _bad_value(name: str) -> str | None:
    for value in CANDIDATES:
        try:
            Settings(_env_file=None, **{name: value})
        except ValueError:
            return value
    return None


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def run(tmp_path):
    """Run the CLI with a home, XDG dirs and working directory of its own and no LINUX_MCP_*
    from this process; assert no traceback, one line on stderr, nothing written."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()

    def go(argv: list[str], code: int, **settings: str) -> str:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LINUX_MCP_", "XDG_"))}
        env.update(HOME=str(home), COLUMNS="80", PYTHONPATH=str(REPO / "src"), **settings)
        before = _files(tmp_path)
        done = subprocess.run(CLI + argv, env=env, cwd=work, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL, check=False)
        assert "Traceback" not in done.stderr + done.stdout
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert done.returncode == code, done.stderr
        assert _files(tmp_path) == before
        return done.stderr
    return go


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_a_bad_value_for_every_setting(run, name):
    value = _bad_value(name)
    assert value is not None, f"{name}: no candidate value is refused"
    variable = f"LINUX_MCP_{name.upper()}"
    err = run(["config", "show"], EXIT_CONFIG, **{variable: value})
    assert variable in err


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_a_bad_value_for_every_setting_in_the_config_file(run, tmp_path, name):
    value = _bad_value(name)
    config = tmp_path / "config.toml"
    config.write_text(f"{name} = {value!r}\n".replace("'", '"'))
    err = run(["config", "show"], EXIT_CONFIG, LINUX_MCP_CONFIG=str(config))
    assert f"LINUX_MCP_{name.upper()}" in err and str(config) in err


def test_unknown_names_name_the_closest(run, tmp_path):
    err = run(["config", "show"], EXIT_CONFIG, LINUX_MCP_CONECT_TIMEOUT="5")
    assert "did you mean LINUX_MCP_CONNECT_TIMEOUT?" in err
    config = tmp_path / "config.toml"
    config.write_text('state_dri = "/srv/state"\n')
    err = run(["config", "show"], EXIT_CONFIG, LINUX_MCP_CONFIG=str(config))
    assert "did you mean state_dir?" in err
    config.write_text('state_dir = \n')
    run(["config", "show"], EXIT_CONFIG, LINUX_MCP_CONFIG=str(config))
    run(["config", "show"], EXIT_CONFIG, LINUX_MCP_CONFIG=str(tmp_path / "missing.toml"))
    run(["config", "show"], EXIT_CONFIG, LINUX_MCP_LAYOUT="cloud")


def _bad_arguments() -> list[list[str]]:
    cases = [["--no-such-option"], ["no-such-command"]]
    for path, parser in walk(build_parser()):
        if parser.get_default("func") is None:
            continue
        prefix = list(path)
        cases.append(prefix + ["--no-such-option"])
        if any(a.required for a in parser._actions if not a.option_strings
               and a.nargs != argparse.REMAINDER):
            cases.append(prefix)  # a required argument missing
        for action in parser._actions:
            if not action.option_strings or action.nargs == 0:
                continue
            if action.choices:
                cases.append(prefix + [action.option_strings[0], "bogus"])
            if action.type in (int, float, port):
                cases.append(prefix + [action.option_strings[0], "many"])
            if action.type is port:
                cases.append(prefix + [action.option_strings[0], "99999"])
    return cases


@pytest.mark.parametrize("argv", _bad_arguments(), ids=" ".join)
def test_bad_arguments_for_every_subcommand(run, argv):
    err = run(argv, EXIT_USAGE)
    assert "error:" in err


def test_a_directory_that_cannot_be_made(run):
    run(["keys", "init", "--dir", "/proc/nope"], EXIT_SYSTEM)
    run(["approvals", "list"], EXIT_SYSTEM, LINUX_MCP_STATE_DIR="/proc/nope")
    for transport in ("stdio", "http"):
        run(["serve", "--transport", transport, "--port", str(free_port())], EXIT_SYSTEM,
            LINUX_MCP_STATE_DIR="/proc/nope")


def test_an_unreachable_host_and_a_port_that_is_not_ssh(run, tmp_path):
    inventory = tmp_path / "hosts.ini"
    closed = free_port()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        http = listener.getsockname()[1]
        inventory.write_text(f"down ansible_host=127.0.0.1 ansible_port={closed}\n"
                             f"web ansible_host=127.0.0.1 ansible_port={http}\n")
        settings = {"LINUX_MCP_INVENTORY": str(inventory), "LINUX_MCP_CONNECT_TIMEOUT": "5",
                    "LINUX_MCP_KNOWN_HOSTS": str(tmp_path / "known_hosts")}
        run(["hosts", "trust", "down", "--yes"], EXIT_HOST, **settings)
        answer = _answer_http(listener)
        run(["hosts", "trust", "web", "--yes"], EXIT_HOST, **settings)
        answer.join()


def _answer_http(listener: socket.socket):
    import threading

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_global_options_and_debug(run, tmp_path):
    run(["--config", str(tmp_path / "missing.toml"), "config", "show"], EXIT_CONFIG)
    done = subprocess.run(CLI + ["--debug", "config", "show"], capture_output=True, text=True,
                          timeout=60, check=False, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(REPO / "src"),
                                   LINUX_MCP_CONNECT_TIMEOUT="soon"))
    assert done.returncode == EXIT_CONFIG and "Traceback" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: setting LINUX_MCP_CONNECT_TIMEOUT")
