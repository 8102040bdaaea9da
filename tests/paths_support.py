"""Where the repository and its command-line entry point are, for tests and support modules
(conftest.py holds fixtures only: a directory's own conftest.py shadows the name)."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = str(REPO / ".venv/bin/mcp-linux-infra")
