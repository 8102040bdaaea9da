"""remove-mcp-infra.yml gives the host back as it was before deploy-mcp-infra.yml: accounts,
files, sshd's effective configuration, the sudo rule; the keys stop working."""
from __future__ import annotations

import json

import pytest

pytest_plugins = ["integration.deployed"]
pytestmark = pytest.mark.lab


def test_removal_leaves_the_host_as_before_the_deploy(deployed):
    host = deployed.removal_host
    reader, pra = deployed.key_for("mcp-reader", host), deployed.key_for("pra-runner", host)
    # use both tiers first: the removal must also take what use leaves behind (the pra-run
    # log, the nonce ledger, done markers, a root-written __pycache__)
    assert deployed.ssh_reader("mcp:version", host=host, key=reader).returncode == 0
    doc = deployed.approval("start_service", {"unit": "lab-app"}, host=host)
    ran = deployed.ssh_pra("run", deployed.envelope(doc), host=host, key=pra)
    assert json.loads(ran.stdout)["outcome"] == "changed", ran.stderr
    assert deployed.root_ok("ls /var/lib/mcp-infra/nonces", host).strip()

    out = deployed.playbook("remove-mcp-infra.yml", limit=host)
    assert deployed.recap(out.stdout)[host]["failed"] == 0

    before, after = deployed.pre_deploy[host], deployed.snapshot(host)
    changed = {p: (before["files"].get(p), after["files"].get(p))
               for p in set(before["files"]) | set(after["files"])
               if before["files"].get(p) != after["files"].get(p)}
    assert changed == {}
    assert after == before  # accounts (getent passwd/group) and sshd -T for both names too
    for user, key in (("mcp-reader", reader), ("pra-runner", pra)):
        refused = deployed.ssh(user, "mcp:version", key=key, host=host)
        assert refused.returncode == 255 and "Permission denied" in refused.stderr

    again = deployed.playbook("remove-mcp-infra.yml", limit=host)
    assert deployed.recap(again.stdout)[host]["changed"] == 0
