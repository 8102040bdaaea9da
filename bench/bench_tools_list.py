#!/usr/bin/env python3
"""tools/list of this version against the previous surface, with the same client in one run.

Not a test. Takes the previous server's code from git (`--previous`, default `main`: its
`src/`, as tests/previous_support.py takes a previous target tier), starts both servers over
stdio (`serve`, this checkout's virtual environment, the same settings: a fake estate of one
host from tests/mcp_support.py) and lists their tools with the SDK's Client. Bytes are the
result as the client receives it, serialised compactly as on the wire (`spaced`: with
json.dumps' default separators, for comparison); tokens are an
estimate (bytes / 4, the usual rule of thumb for English and JSON; no tokenizer is shipped):

    .venv/bin/python bench/bench_tools_list.py [--previous REF]
"""

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests")]
from mcp_support import make_estate

LAUNCH = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
          "from mcp_linux_infra.cli import main; sys.exit(main())")


def previous_src(ref: str, into: Path) -> tuple[Path, str]:
    """`src/` of `ref`, extracted under `into`, and the commit it names."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", ref],
                            capture_output=True, text=True, check=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit, "src"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src", commit


async def listed(params: StdioServerParameters) -> tuple[int, int, int]:
    """(bytes, bytes with json.dumps' default spacing, tools) of tools/list as the client
    receives it."""
    async with Client(params) as client:
        result = await client.list_tools()
    data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    wire = json.dumps(data, separators=(",", ":"))
    return len(wire.encode()), len(json.dumps(data).encode()), len(result.tools)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--previous", default="main", help="git ref of the previous surface")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        estate = make_estate(Path(tmp) / "estate", ["web-01"])
        try:
            src, commit = previous_src(args.previous, Path(tmp) / "previous")
            env = estate.env()
            python = sys.executable
            old = anyio.run(listed, StdioServerParameters(
                command=python, args=["-c", LAUNCH, str(src), "serve"], env=env, cwd=tmp))
            new = anyio.run(listed, StdioServerParameters(
                command=python, args=["-c", LAUNCH, str(REPO / "src"), "serve"], env=env,
                cwd=tmp))
        finally:
            estate.close()
    rows = [(f"previous ({args.previous} {commit})", *old), ("this version", *new)]
    print(f"{'surface':<28} {'tools':>5} {'bytes':>7} {'spaced':>7} {'~tokens':>8}")
    for name, size, spaced, count in rows:
        print(f"{name:<28} {count:>5} {size:>7} {spaced:>7} {size // 4:>8}")
    print(f"ratio (this / previous): {new[0] / old[0]:.2f}")
    print(json.dumps({"previous": {"ref": commit, "tools": old[2], "bytes": old[0]},
                      "this": {"tools": new[2], "bytes": new[0]},
                      "ratio": round(new[0] / old[0], 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
