"""rotate-keys.yml on a deployed target: the new keys work, the old ones are refused, the
controller keeps the old pairs as retired copies, and nothing else on the target changes."""
from __future__ import annotations

import pytest

pytest_plugins = ["integration.deployed"]
pytestmark = pytest.mark.lab

# Everything the deploy installed or touched, except the authorized_keys files themselves.
DEPLOYED_SET = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/ssh",
                "/etc/sudoers.d", "/etc/mcp-infra", "/usr/local/libexec/mcp-infra",
                "/usr/local/lib/mcp-infra", "/usr/local/sbin/pra-run")
KEYS = {"mcp-reader": ("mcp-reader", "mcp:version"), "pra-runner": ("pra-exec", "list")}


def test_rotating_both_keys(deployed):
    host = deployed.host
    before = deployed.snapshot(host, DEPLOYED_SET)
    old = {user: (deployed.keys_dir / f"{name}.key").read_bytes()
           for user, (name, _) in KEYS.items()}

    deployed.playbook("rotate-keys.yml", "-e", "mcp_infra_rotate=both", limit=host)

    for user, (name, probe) in KEYS.items():
        key = deployed.keys_dir / f"{name}.key"
        retired = list(deployed.keys_dir.glob(f"{name}.key.retired-*"))
        assert len(retired) == 1 and retired[0].read_bytes() == old[user]
        assert key.read_bytes() != old[user] and key.stat().st_mode & 0o077 == 0
        assert not list(deployed.keys_dir.glob(f"{name}.key.new*"))
        # fresh logins: the new key goes through the forced command, the old one is refused
        assert deployed.ssh(user, probe).returncode == 0
        refused = deployed.ssh(user, probe, key=retired[0])
        assert refused.returncode == 255 and "Permission denied" in refused.stderr
        # the target accepts exactly the new key
        text = deployed.root_ok(f"cat /etc/ssh/authorized_keys/{user}")
        lines = [line for line in text.splitlines() if line and not line.startswith("#")]
        public = key.with_name(key.name + ".pub").read_text().split()[:2]
        assert [line.split()[-2:] for line in lines] == [public]

    after = deployed.snapshot(host, DEPLOYED_SET)
    for snapshot in (before, after):
        for user in KEYS:
            del snapshot["files"][f"/etc/ssh/authorized_keys/{user}"]
    assert after == before
