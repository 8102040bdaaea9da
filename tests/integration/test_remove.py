"""remove-mcp-infra.yml gives the hosts back as they were before deploy-mcp-infra.yml:
accounts, files, sshd's effective configuration, the sudo rule; the keys stop working.

Two hosts, one run: `removal_host` has the usual sshd drop-in; `fallback_host` has no Include
line in sshd_config (as with OpenSSH < 8.2), so the deploy put the Match blocks in a managed
block at the end of sshd_config, and they must work there and go away with the removal."""
from __future__ import annotations

import json

import pytest

pytest_plugins = ["integration.deployed"]
pytestmark = pytest.mark.lab


def reason(proc) -> str:
    assert proc.returncode == 126, (proc.returncode, proc.stdout, proc.stderr)
    return json.loads(proc.stderr.splitlines()[-1])["mcp_refusal"]["reason"]


def test_removal_leaves_the_hosts_as_before_the_deploy(deployed):
    hosts = [deployed.removal_host, deployed.fallback_host]
    fallback = deployed.fallback_host
    config = deployed.root_ok("cat /etc/ssh/sshd_config", fallback)
    marker = "# BEGIN mcp-linux-infra forced-command accounts"
    without_block = config[:config.index(marker)]
    assert "\n#Include /etc/ssh/sshd_config.d/*.conf\n" in without_block
    assert "Match User mcp-reader" in config[len(without_block):]
    assert "50-mcp-infra.conf" not in deployed.root_ok("ls /etc/ssh/sshd_config.d", fallback)

    # Use both tiers on both hosts first: the removal must also take what use leaves behind
    # (pra-run's log, the nonce ledger, done markers, the run lock).
    keys = {}
    for host in hosts:
        keys[host] = reader, pra = (deployed.key_for("mcp-reader", host),
                                    deployed.key_for("pra-runner", host))
        assert deployed.ssh_reader("mcp:version", host=host, key=reader).returncode == 0
        assert reason(deployed.ssh_reader(None, host=host, key=reader)) == "shell_request"
        doc = deployed.approval("restart_service", {"unit": "cron"}, host=host)
        ran = deployed.ssh_pra("run", deployed.envelope(doc), host=host, key=pra)
        assert json.loads(ran.stdout)["outcome"] == "changed", ran.stderr
        assert deployed.root_ok("ls /var/lib/mcp-infra/nonces", host).strip()

    deployed.playbook("remove-mcp-infra.yml", limit=",".join(hosts))

    assert deployed.root_ok("cat /etc/ssh/sshd_config", fallback) == without_block
    deployed.comment_include(fallback, undo=True)
    for host in hosts:
        before, after = deployed.pre_deploy[host], deployed.snapshot(host)
        differ = {p: (before["files"].get(p), after["files"].get(p))
                  for p in set(before["files"]) | set(after["files"])
                  if before["files"].get(p) != after["files"].get(p)}
        assert differ == {}, host
        assert after == before, host  # getent passwd/group, sshd -T for both names too
        for user, key in zip(("mcp-reader", "pra-runner"), keys[host]):
            refused = deployed.ssh(user, "mcp:version", key=key, host=host)
            assert refused.returncode == 255 and "Permission denied" in refused.stderr

    again = deployed.playbook("remove-mcp-infra.yml", limit=",".join(hosts))
    assert deployed.changed_tasks(again.stdout) == []
