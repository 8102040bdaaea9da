"""Every action of the lab's catalog that can really run there, twice, through the whole real
path: ssh as pra-runner -> pra-exec -> sudo -n pra-run, with an approval signed by the
operator key that allowed_signers lists. The first run changes something, the second finds
the desired state already there.

Not run here:
- restart_container: the lab has no container engine (no docker or podman), so the deployed
  catalog does not offer it at all (test_deploy.py checks that it is absent).
- django_manage `check`: a check-only variant (no run step), so it is `already-satisfied` both
  times by design; it runs below for that, not for a change.
"""
from __future__ import annotations

import json

import pytest

pytest_plugins = ["integration.deployed"]
pytestmark = pytest.mark.lab

# (action, params, setup as root, probe as root): the setup puts the target in the state
# the first run must change, whatever ran before (for windowed actions: no recent change).
FORGET = "rm -rf /var/lib/mcp-infra/done"
TWICE = [
    ("start_service", {"unit": "lab-app"}, "systemctl stop lab-app",
     "systemctl is-active lab-app || true"),
    ("restart_service", {"unit": "cron"}, FORGET, "systemctl show -p MainPID --value cron"),
    ("reset_failed_unit", {"unit": "lab-broken"},
     "systemctl start lab-broken; sleep 1; systemctl is-failed --quiet lab-broken",
     "systemctl show -p ActiveState --value lab-broken"),
    ("reload_service", {"unit": "nginx"}, FORGET, "pgrep -d, -P \"$(cat /run/nginx.pid)\""),
    ("rotate_logs", {"config": "/etc/logrotate.d/nginx"},
     f"{FORGET}; rm -f /var/log/nginx/access.log.1; curl -s -o /dev/null http://127.0.0.1/",
     "ls /var/log/nginx"),
    ("flush_dns_cache", {}, FORGET, "unbound-control status | head -1"),
    ("django_manage", {"command": "migrate"}, "rm -f /var/lib/lab-app/db.sqlite3",
     "cd /srv/lab-app && runuser -u www-data -- python3 manage.py showmigrations labapp"),
    # the lab app has no static files: collectstatic runs and copies nothing
    ("django_manage", {"command": "collectstatic"}, FORGET, "true"),
]
# what the probe shows before and after the first run, where a change is visible
CHANGES = {
    "start_service": lambda b, a: (b.strip(), a.strip()) == ("inactive", "active"),
    "restart_service": lambda b, a: b != a,  # a new main process: really restarted
    "reset_failed_unit": lambda b, a: (b.strip(), a.strip()) == ("failed", "inactive"),
    "reload_service": lambda b, a: b != a,  # new nginx workers
    "rotate_logs": lambda b, a: "access.log.1" not in b and "access.log.1" in a,
    "migrate": lambda b, a: "[ ] 0001_initial" in b and "[X] 0001_initial" in a,
}


def result(proc) -> dict:
    assert proc.returncode in (0, 1), (proc.returncode, proc.stdout, proc.stderr)
    return json.loads(proc.stdout)


def log_lines(deployed) -> list[dict]:
    text = deployed.root_ok("cat /var/log/mcp-infra/pra-run.log 2>/dev/null || true")
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("action, params, setup, probe", TWICE,
                         ids=[f"{a}-{'-'.join(p.values()) or 'none'}" for a, p, _, _ in TWICE])
def test_first_changed_then_already_satisfied(deployed, action, params, setup, probe):
    deployed.root_ok(setup)
    before = deployed.root_ok(probe)
    first = result(deployed.run_action(action, params))
    assert first["outcome"] == "changed", first
    assert first["run"]["exit"] == 0
    after = deployed.root_ok(probe)
    second = result(deployed.run_action(action, params))
    assert second["outcome"] == "already-satisfied", second
    assert second["run"] is None  # nothing ran the second time
    visible = CHANGES.get(params.get("command", action))
    if visible:
        assert visible(before, after), (before, after)
    # both attempts are in the root-owned log, with the signer and the nonce they used
    logged = [r for r in log_lines(deployed) if r.get("nonce") in (first["nonce"], second["nonce"])]
    assert [r["outcome"] for r in logged] == ["changed", "already-satisfied"]
    assert {r["approver"] for r in logged} == {"operator"}


def test_check_only_action_is_already_satisfied_and_changes_nothing(deployed):
    for _ in range(2):
        got = result(deployed.run_action("django_manage", {"command": "check"}))
        assert got["outcome"] == "already-satisfied" and got["run"] is None, got


def test_an_approval_works_once(deployed):
    """The same signed envelope sent again is refused (the nonce ledger), and logged."""
    envelope = deployed.envelope(deployed.approval("start_service", {"unit": "nginx"}))
    assert result(deployed.ssh_pra("run", envelope))["outcome"] == "already-satisfied"
    replay = deployed.ssh_pra("run", envelope)
    assert replay.returncode == 126
    assert json.loads(replay.stderr.splitlines()[-1])["mcp_refusal"]["reason"] == "replayed_nonce"
    assert log_lines(deployed)[-1]["refusal"]["reason"] == "replayed_nonce"


def test_the_read_tier_still_trusts_its_library_after_root_ran_it(deployed):
    """Root ran the library (pra-run) many times above: nothing it left behind may make the
    read-only wrapper (mcp-reader) distrust the library."""
    out = deployed.ssh_reader("mcp:version")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["name"] == "mcp-wrapper"
    package = "/usr/local/lib/mcp-infra/mcp_infra_target"
    assert "__pycache__" not in deployed.root_ok(f"find {package}")
