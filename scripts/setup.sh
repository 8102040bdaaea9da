#!/usr/bin/env bash
# Install what mcp-linux-infra needs on a Debian 12 / Ubuntu 22.04+ machine, as root:
# Debian packages for the lab and the SSH client, and a virtualenv (.venv) with the project
# and its dev extras. Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: run as root (the lab boots containers with systemd-nspawn)" >&2
    exit 2
fi

# tmux: the tests read the operator CLI's screens back from a real terminal. gcc, libc6-dev,
# libssl-dev: the tests build a simulated security key that ssh-keygen signs with
# (tests/sk_provider.c). podman: the container image test builds contrib/container/Containerfile.
packages=(systemd-container debootstrap openssh-client sudo python3 python3-venv ca-certificates
          tmux gcc libc6-dev libssl-dev podman)
# postgresql: the tests start a throwaway PostgreSQL cluster (tests/pg_support.py) for the
# shared store (LINUX_MCP_DATABASE_URL); the server needs only the client, psycopg's wheel.
packages+=(postgresql)
# chromium: the browser tests drive the approval console in a real headless browser
# (/usr/bin/chromium). Debian packages it; Ubuntu has only a snap, which they do not use.
if grep -qx 'ID=ubuntu' /etc/os-release 2>/dev/null; then
    echo "setup.sh: no Debian chromium on Ubuntu: the browser tests will be skipped" >&2
else
    packages+=(chromium)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup.sh: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The interpreter: the first python3 on PATH that is 3.11 or newer (the distro's on Debian 12).
python=""
for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null &&
       "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        python=$(command -v "$candidate"); break
    fi
done
if [ -z "$python" ]; then
    echo "setup.sh: Python 3.11 or newer is needed" >&2
    exit 2
fi

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
echo "setup.sh: ready ($(.venv/bin/mcp-linux-infra --version))"
