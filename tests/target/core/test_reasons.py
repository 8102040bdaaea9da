"""One refusal vocabulary for both tiers: every reason code the library can give is in the one
documented list (system/README.md, "Refusal reasons") and the list names no other."""
from __future__ import annotations

import ast
import re

from wrapper_support import REPO

LIBRARY = REPO / "system" / "lib" / "mcp_infra_target"
README = REPO / "system" / "README.md"


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def raised_codes() -> set[str]:
    """Codes given to Refusal(...), the argv parser's fail(code, ...) and the bootstrap's
    refuse(name, code, ...), assigned to a
    `reason` variable first (screen), or listed in a *REASONS table (signature)."""
    codes = set()
    for path in LIBRARY.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                position = {"Refusal": 0, "refuse": 1, "fail": 0}.get(name)
                if position is not None and len(node.args) > position:
                    codes.add(_text(node.args[position]))
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and target.id == "reason":
                    codes.add(_text(node.value))
                elif isinstance(target, ast.Name) and target.id.endswith("REASONS"):
                    codes.update(_text(row.elts[1]) for row in node.value.elts)
    codes.discard(None)
    return codes


def documented_codes() -> set[str]:
    section = README.read_text().split("\n## Refusal reasons\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", section, re.MULTILINE))


def test_the_readme_lists_exactly_the_codes_the_library_gives():
    raised, documented = raised_codes(), documented_codes()
    assert len(raised) > 60
    assert raised - documented == set(), "raised but not documented"
    assert documented - raised == set(), "documented but never raised"


def test_one_code_per_meaning():
    """The codes the two tiers used to spell differently are gone."""
    assert not raised_codes() & {"no_command", "bad_trace"}
