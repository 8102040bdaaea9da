"""A real terminal for CLI tests: a tmux server of the test's own (its own socket), one pane
of a fixed size running one command, its screen read with `capture-pane`.

What the operator sees is what tmux's terminal emulator made of the bytes, cursor movement,
erasures and titles included, so a test asserts on the screen, not on the byte stream.
"""

import re
import secrets
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

WIDTH, HEIGHT = 200, 60
DEADLINE_S = 90.0
EXIT = re.compile(r"\[exit (\d+)\]")
_SGR = re.compile(r"\x1b\[([0-9;:]*)m")


class Terminal:
    """`tmux -S <own socket>` with one session; `run` starts a command in a fresh pane."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        tmux = shutil.which("tmux")
        if tmux is None:
            pytest.fail("tmux is not installed (scripts/setup.sh installs it)", pytrace=False)
        self.tmux = tmux
        # The server's socket lives in the test's own directory (removed with it).
        self.socket = workdir / f"tmux-{secrets.token_hex(4)}.sock"
        self.conf = workdir / "tmux.conf"
        # remain-on-exit keeps the pane (and its screen) after the command ends; no status
        # line, so every row is the program's; a long history for long screens.
        self.conf.write_text("set -g remain-on-exit on\nset -g status off\n"
                             "set -g history-limit 10000\n")
        self.env = {k: v for k, v in env.items() if k not in ("TMUX", "COLUMNS", "LINES")}
        self.session = None
        self.runs = 0

    def _tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run([self.tmux, "-S", str(self.socket), "-f", str(self.conf), *args],
                              env=self.env, capture_output=True, text=True, timeout=30,
                              check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def run(self, argv: list[str]) -> None:
        """Start `argv` in a new WIDTHxHEIGHT session; `[exit N]` is printed when it ends."""
        if self.session is not None:
            self._tmux("kill-session", "-t", self.session)
        self.runs += 1
        self.session = f"s{self.runs}"
        command = f"{shlex.join(argv)}; echo \"[exit $?]\""
        self._tmux("new-session", "-d", "-s", self.session, "-x", str(WIDTH), "-y",
                   str(HEIGHT), "sh", "-c", command)

    def screen(self, escapes: bool = False) -> str:
        """The pane's history and screen; with `escapes`, tmux's own rendition of the
        attributes (SGR) of every cell."""
        args = ["capture-pane", "-p", "-J", "-S", "-", "-E", "-", "-t", self.session]
        return self._tmux(*(args + ["-e"] if escapes else args))

    def title(self) -> str:
        return self._tmux("display-message", "-p", "-t", self.session, "#{pane_title}").strip()

    def wait_for(self, pattern: str) -> str:
        """The screen once `pattern` (a regex) is on it; fails with the screen at the
        deadline."""
        wanted = re.compile(pattern)
        deadline = time.monotonic() + DEADLINE_S
        while True:
            text = self.screen()
            if wanted.search(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} never appeared; the screen:\n{text}")
            time.sleep(0.05)  # polling the pane, not synchronising on time

    def wait_exit(self) -> tuple[int, str]:
        text = self.wait_for(EXIT.pattern)
        return int(EXIT.findall(text)[-1]), text

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.session, *keys)

    def close(self) -> None:
        self._tmux("kill-server", check=False)


def sgr_attributes(screen: str) -> set[int]:
    """The SGR attribute codes in a `capture-pane -e` screen (colour arguments skipped)."""
    codes: set[int] = set()
    for params in _SGR.findall(screen):
        numbers = [int(p) if p.isdigit() else 0 for p in re.split("[;:]", params)]
        i = 0
        while i < len(numbers):
            n = numbers[i]
            if n in (38, 48, 58) and i + 1 < len(numbers):
                i += 3 if numbers[i + 1] == 5 else 5
                continue
            codes.add(n)
            i += 1
    return codes
