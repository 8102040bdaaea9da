"""`mcp-linux-infra completion SHELL` prints a completion script (shtab, from the real parser
tree); the bash one is sourced in a real bash and asked, as readline would, what completes
`mcp-linux-infra app` and `mcp-linux-infra approvals `."""

import shutil
import subprocess

import pytest
from paths_support import CLI

from mcp_linux_infra.cli import build_parser
from mcp_linux_infra.cli_examples import subcommands, walk

ASK = r"""
source "$1"
function=$(complete -p mcp-linux-infra | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
shift
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
"$function" mcp-linux-infra "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def script(shell: str) -> str:
    done = subprocess.run([CLI, "completion", shell], capture_output=True, text=True,
                          timeout=60, check=True, stdin=subprocess.DEVNULL)
    assert done.stderr == ""
    return done.stdout


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory):
    path = tmp_path_factory.mktemp("completion") / "mcp-linux-infra.bash"
    path.write_text(script("bash"))
    return path


def complete(bash_script, *words: str) -> list[str]:
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", ASK, "ask", str(bash_script),
                           "mcp-linux-infra", *words], capture_output=True, text=True,
                          timeout=60, check=True)
    return [w.strip() for w in done.stdout.splitlines() if w.strip()]


def test_bash_completes_subcommands(bash_script):
    assert complete(bash_script, "app") == ["approvals"]
    approvals = dict(walk(build_parser()))[("approvals",)]
    assert sorted(complete(bash_script, "approvals", "")) == \
        sorted(name for name, _ in subcommands(approvals))
    assert "--json" in complete(bash_script, "approvals", "list", "--")
    assert complete(bash_script, "keys", "init", "--dir", str(bash_script)[:-2]) == \
        [str(bash_script)]  # a path option completes files


@pytest.mark.parametrize("shell", ["zsh", "tcsh"])
def test_zsh_and_tcsh_scripts(shell):
    text = script(shell)
    assert "approvals" in text and "mcp-linux-infra" in text
    if shutil.which(shell):  # a syntax check where the shell is installed
        subprocess.run([shell, "-n", "-c", text], check=True, timeout=60)
