"""No test or benchmark reads the clock when its module is imported (at module level, in a
class body, a default argument or a decorator): the suite may reach a test many minutes
after collection, so a clock read then is stale (issue 9, finding 7)."""

import ast

import pytest
from paths_support import REPO

CLOCKS = {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "now", "utcnow",
          "today", "localtime", "gmtime"}


def import_time_clocks(tree: ast.AST) -> list[str]:
    found = []

    def visit(node, in_body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            evaluated_now = node.args.defaults + [d for d in node.args.kw_defaults if d]
            for child in evaluated_now + getattr(node, "decorator_list", []):
                visit(child, in_body)
            for child in node.body if isinstance(node.body, list) else [node.body]:
                visit(child, True)
            return
        if (not in_body and isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in CLOCKS):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        for child in ast.iter_child_nodes(node):
            visit(child, in_body)

    visit(tree, False)
    return found


FILES = sorted(p for d in ("tests", "bench") for p in (REPO / d).rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(REPO)) for p in FILES])
def test_no_clock_read_at_import(path):
    assert import_time_clocks(ast.parse(path.read_text())) == []


@pytest.mark.parametrize("source,count", [
    pytest.param("import time\nNOW = int(time.time())\n", 1, id="module-level"),
    pytest.param("import time\nclass T:\n    start = time.monotonic()\n", 1, id="class-body"),
    pytest.param("import datetime\ndef f(at=datetime.datetime.now()):\n    pass\n", 1,
                 id="default-argument"),
    pytest.param("import time\ndef f():\n    return time.time()\n", 0, id="inside-a-call"),
])
def test_the_scan_finds_import_time_reads(source, count):
    assert len(import_time_clocks(ast.parse(source))) == count
