#!/usr/bin/env bash
# Run every test, lab tests included (they boot real systemd targets), after setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
