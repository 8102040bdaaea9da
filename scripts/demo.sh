#!/usr/bin/env bash
# The newcomer's first command: install, make keys, boot a lab target and show it answering.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cli=.venv/bin/mcp-linux-infra
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "keys: the reader, action and operator key pairs"
$cli keys init
step "lab: boot a Debian 12 target with systemd-nspawn (the image is built once and cached)"
$cli lab up --hosts 1
step "lab-01 answers over ssh, with strict host key checking"
$cli lab ssh lab-01 -- 'hostname; systemctl is-system-running; systemctl --failed --no-legend; systemctl is-active nginx unbound; curl -s http://localhost/'
step "done: the lab stays up (mcp-linux-infra lab status | lab ssh lab-01 | lab down)"
