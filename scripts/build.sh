#!/usr/bin/env bash
# Build what people install, into dist/: the sdist, the wheel (built from the sdist) and the
# Ansible collection tarball (built from the wheel's collection tree, which setup.py assembles
# from ansible/ and system/). Run `bash scripts/setup.sh` once first. docs/INSTALL.md.
set -euo pipefail
cd "$(dirname "$0")/.."

rm -rf dist
.venv/bin/python -m build --outdir dist .
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
.venv/bin/python -m zipfile -e dist/mcp_linux_infra-*.whl "$tree"
.venv/bin/ansible-galaxy collection build "$tree/ansible_collections/mcp_linux_infra/target" \
    --output-path dist
ls -l dist
