"""The rooms of the code and which may import which (docs/ARCHITECTURE.md, "The layout"),
read from every module's imports (`ast`, imports inside functions included).

`system/` is the boundary: the target library imports nothing of the client. In the client
(src/mcp_linux_infra) a room may import only the rooms below it; the entry point (cli.py)
is the only importer of the lab, server/app.py the only importer of server/tools, and
approvals' action_tier, document and verify the only importers of the target library.
"""

import ast
from pathlib import Path

import pytest
from paths_support import REPO

SRC = REPO / "src/mcp_linux_infra"
TARGET = REPO / "system/lib/mcp_infra_target"
CLIENT = "mcp_linux_infra"

# room: the rooms its modules may import (a room may always import itself)
ALLOWED = {
    "entry": {"base", "ssh", "readonly", "approvals", "server", "lab", "operators", "console",
              "doctor"},
    "doctor": {"base", "ssh", "readonly", "approvals", "operators"},
    "console": {"base", "approvals", "operators"},
    "operators": {"base", "approvals"},
    "server/tools": {"base", "ssh", "readonly", "approvals", "server"},
    "server": {"base", "ssh", "readonly", "approvals"},
    "approvals": {"base", "ssh", "readonly"},
    "readonly": {"base", "ssh"},
    "ssh": {"base"},
    "lab": {"base"},
    "base": set(),
}
ENTRY = {"cli", "__main__"}
EXCEPTIONS = {("server.app", "server/tools")}  # the server registers its tools
TARGET_LIBRARY = "mcp_infra_target"
# the target's own pure functions the client runs too: the catalog's param check
# (action_tier), the approval document's parser (document), the SSHSIG decoder (verify)
IMPORTS_TARGET = {"approvals.action_tier", "approvals.document", "approvals.verify"}


def room(module: str) -> str:
    """`server.tools.hosts` -> server/tools; `settings` -> base; `cli` -> entry."""
    parts = module.split(".")
    if parts[0] in ENTRY:
        return "entry"
    if parts[:2] == ["server", "tools"]:
        return "server/tools"
    if parts[0] in ("server", "readonly", "approvals", "ssh", "lab", "operators", "console",
                    "doctor"):
        return parts[0]
    return "base"


def modules(top: Path) -> dict[str, Path]:
    return {".".join(path.relative_to(top).with_suffix("").parts).removesuffix(".__init__"): path
            for path in sorted(top.rglob("*.py")) if "lab/files" not in path.as_posix()}


def imported(path: Path) -> set[str]:
    """Every module name an import in `path` names (absolute imports)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def client_imports(path: Path) -> set[str]:
    """The client modules `path` imports, relative to the package (`server.toolcall`)."""
    known = modules(SRC)
    found = set()
    for name in imported(path):
        if name == CLIENT or not name.startswith(CLIENT + "."):
            continue
        inner = name.removeprefix(CLIENT + ".")
        while inner not in known and "." in inner:
            inner = inner.rsplit(".", 1)[0]  # `from pkg.module import name`
        found.add(inner)
    return found


@pytest.mark.parametrize("module", sorted(modules(SRC)))
def test_a_room_imports_only_the_rooms_below_it(module):
    mine = room(module)
    wrong = sorted(f"{other} ({room(other)})" for other in client_imports(modules(SRC)[module])
                   if room(other) != mine and room(other) not in ALLOWED[mine]
                   and (module, room(other)) not in EXCEPTIONS)
    assert wrong == [], f"{module} ({mine}) may import only {sorted(ALLOWED[mine])}"


@pytest.mark.parametrize("module", sorted(modules(TARGET)))
def test_the_target_library_imports_nothing_of_the_client(module):
    names = imported(modules(TARGET)[module])
    assert not [n for n in names if n == CLIENT or n.startswith(CLIENT + ".")]


@pytest.mark.parametrize("module", sorted(modules(SRC)))
def test_one_client_module_imports_the_target_library(module):
    names = imported(modules(SRC)[module])
    uses = any(n == TARGET_LIBRARY or n.startswith(TARGET_LIBRARY + ".") for n in names)
    assert uses is (module in IMPORTS_TARGET)


def test_the_rules_name_every_room():
    assert {room(m) for m in modules(SRC)} == set(ALLOWED)


@pytest.mark.parametrize(("module", "name", "allowed"), [
    pytest.param("settings", "mcp_linux_infra.server.state", False, id="base-above-itself"),
    pytest.param("readonly.protocol", "mcp_linux_infra.approvals.store", False,
                 id="read-tier-above-itself"),
    pytest.param("server.state", "mcp_linux_infra.lab.manager", False, id="lab-outside-cli"),
    pytest.param("server.resources", "mcp_linux_infra.server.tools.hosts", False,
                 id="server-into-its-tools"),
    pytest.param("cli", "mcp_linux_infra.lab.manager", True, id="cli-into-lab"),
    pytest.param("server.tools.hosts", "mcp_linux_infra.server.toolcall", True,
                 id="tools-into-server"),
])
def test_the_rules_themselves(module, name, allowed):
    other = name.removeprefix(CLIENT + ".")
    assert (room(other) == room(module) or room(other) in ALLOWED[room(module)]
            or (module, room(other)) in EXCEPTIONS) is allowed


@pytest.mark.parametrize("path", sorted(p.relative_to(REPO / "tests").as_posix()
                                        for p in (REPO / "tests").rglob("*.py")))
def test_nothing_imports_conftest(path):
    """A directory's own conftest.py shadows the name `conftest`: fixtures live in conftest
    files, everything else a test imports is a support module (paths_support, ...)."""
    assert not [n for n in imported(REPO / "tests" / path) if n.split(".")[0] == "conftest"]
