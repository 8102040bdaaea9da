#!/usr/bin/env bash
# The newcomer's first command, as root on Debian 12: install everything, make the keys, boot
# a lab target, deploy the target tier to it with Ansible, then a scripted session through a
# real MCP client: diagnose, find the stopped service, propose a restart, the operator
# approves with a signature, execute, verify. Safe to run again: keys are kept, the lab is
# reused, the deploy converges, and the session stages the lab's outage again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cli=.venv/bin/mcp-linux-infra
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
host="${LINUX_MCP_LAB_NAME_PREFIX:-lab}-01"
# The demo keeps its files in this clone (keys/, state/, lab/, ansible/inventory/lab.ini),
# not in the config home (~/.config, ~/.local/state: docs/OPERATIONS.md, "Configuration").
export LINUX_MCP_KEYS_DIR=$(realpath -m "${LINUX_MCP_KEYS_DIR:-keys}")
export LINUX_MCP_STATE_DIR=$(realpath -m "${LINUX_MCP_STATE_DIR:-state}")
export LINUX_MCP_LAB_DIR=$(realpath -m "${LINUX_MCP_LAB_DIR:-lab}")
export LINUX_MCP_LAB_INVENTORY=$(realpath -m "${LINUX_MCP_LAB_INVENTORY:-ansible/inventory/lab.ini}")
inventory=$LINUX_MCP_LAB_INVENTORY
keys=$LINUX_MCP_KEYS_DIR
state=$LINUX_MCP_STATE_DIR
export LINUX_MCP_INVENTORY="${LINUX_MCP_INVENTORY:-$inventory}"

step "keys: the reader, action and operator key pairs (existing ones are kept)"
$cli keys init
step "operators: the operator key, registered as ${LINUX_MCP_APPROVER:-operator} (once)"
if ! out=$($cli operators add "${LINUX_MCP_APPROVER:-operator}" \
        --public-key "$keys/operator.key.pub" 2>&1); then
    case "$out" in
        *operator_exists*|*key_taken*) echo "already registered" ;;
        *) echo "$out" >&2; exit 1 ;;
    esac
fi
step "lab: boot a Debian 12 target with systemd-nspawn (the image is built once and cached)"
$cli lab up --hosts 1
step "deploy: ansible-playbook deploy-mcp-infra.yml to $host (about a minute; log: $state/deploy.log)"
mkdir -p "$state"
# The lab's action targets (inventory/group_vars/lab.yml) are given explicitly, so that a lab
# with another name prefix (another inventory group) gets them too.
if ! (cd ansible && ../.venv/bin/ansible-playbook -i "$inventory" playbooks/deploy-mcp-infra.yml \
        -e @inventory/group_vars/lab.yml -e "mcp_infra_keys_dir=$keys") >"$state/deploy.log" 2>&1
then
    tail -n 40 "$state/deploy.log"
    echo "demo.sh: the deploy failed; the whole log is in $state/deploy.log" >&2
    exit 1
fi
sed -n '/PLAY RECAP/,$p' "$state/deploy.log"
step "the session: a real MCP client over stdio plays the model; you play the operator"
.venv/bin/python scripts/demo_session.py --host "$host"
step "done: the lab stays up (mcp-linux-infra lab status | lab ssh $host | lab down)"
