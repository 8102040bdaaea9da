"""One list of target paths (core.bootstrap.TARGET_PATHS): the library, the executables and
the role take every path from it. No code elsewhere spells one; the files installed verbatim
(sudo rule, logrotate, the default policy's deny list) name only paths of the list."""
from __future__ import annotations

import ast
import json
import re
import subprocess

import pytest
from mcp_infra_target.core.bootstrap import TARGET_PATHS
from mcp_infra_target.core.layout import Layout
from wrapper_support import REPO

# the paths that are ours (the generic ones, /usr/bin/sudo and /run, are not grepped for)
OURS = sorted({path for path in TARGET_PATHS.values()
               if "mcp-infra" in path or "pra-r" in path or "mcp-wrapper" in path}
              | {path.rsplit("/", 1)[0] for path in TARGET_PATHS.values() if "mcp-infra" in
                 path.rsplit("/", 1)[0]}, key=len, reverse=True)
SPELLING = re.compile("|".join(map(re.escape, OURS)))
THE_LIST = "system/lib/mcp_infra_target/core/bootstrap.py"
VERBATIM = ["system/sudoers.d/pra-runner", "system/logrotate.d/mcp-infra",
            "system/policy/readonly.json"]


def tracked(*prefixes: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                          *prefixes], cwd=REPO, capture_output=True, text=True, check=True)
    return [name for name in out.stdout.split()
            if (REPO / name).is_file() and not (REPO / name).is_symlink()]


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def spelled_in_code(name: str) -> list[str]:
    """Target paths in a file's code: Python string literals but docstrings, YAML and Jinja
    lines but comments."""
    text = (REPO / name).read_text(errors="replace")
    if name.endswith(".py") or text.startswith("#!/usr/bin/python3"):
        tree = ast.parse(text)
        skip = _docstrings(tree)
        return [node.value for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in skip and SPELLING.search(node.value)]
    return [line for line in text.splitlines()
            if SPELLING.search(line) and not line.lstrip().startswith("#")]


def test_the_list_names_each_installed_file_once():
    assert len(set(TARGET_PATHS.values())) == len(TARGET_PATHS)
    assert all(path.startswith("/") and "//" not in path for path in TARGET_PATHS.values())
    layout = Layout("/tmp/root")
    assert layout.path("policy") == "/tmp/root" + TARGET_PATHS["policy"]
    assert Layout().audit_file is None and layout.audit_file.startswith("/tmp/root/")


@pytest.mark.parametrize("name", [
    pytest.param(name, id=name) for name in tracked("system", "ansible", "src", "scripts",
                                                    "bench")
    if name != THE_LIST and name not in VERBATIM and not name.endswith(".md")
    and (name.endswith((".py", ".yml", ".yaml", ".j2", ".sh", ".cfg", ".ini"))
         or (REPO / name).read_bytes()[:2] == b"#!")])
def test_no_code_spells_a_target_path(name):
    assert spelled_in_code(name) == []


@pytest.mark.parametrize("name", VERBATIM)
def test_files_installed_verbatim_name_only_listed_paths(name):
    text = (REPO / name).read_text()
    found = re.findall(r"/(?:usr/local|etc|var/lib|var/log)/[A-Za-z0-9._/*-]*(?:mcp-infra|pra-r)"
                       r"[A-Za-z0-9._/*-]*", text)
    assert found
    for path in found:
        assert any(path == listed or path.startswith(listed.rstrip("/") + "/")
                   for listed in OURS), path


def test_the_role_reads_the_list_as_json():
    """The role takes the literal after `TARGET_PATHS = ` up to the first `}` as JSON
    (ansible/roles/mcp_infra/vars/main.yml), so it must be exactly that."""
    source = (REPO / THE_LIST).read_text()
    literal = re.search(r"TARGET_PATHS = [{][^}]*[}]", source).group(0).split("=", 1)[1]
    assert json.loads(literal) == TARGET_PATHS
