"""diagnose_system's TOON view (server/diagnose_view.py): tables by check, nothing lost.

The fleets are made by the real diagnose_host from output captured on a lab target
(tests/data/target_outputs.json), each host with its own load and CPU count, so that some
hosts have findings; optionally one host's load check times out and one host is down."""

import json
from types import SimpleNamespace

import pytest
import toon_format
from mcp_support import OUTPUTS

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.readonly.commands import JOURNAL_FIELDS, SERVICE_PROPERTIES
from mcp_linux_infra.readonly.protocol import Outcome
from mcp_linux_infra.server.diagnose import CHECKS, diagnose_host
from mcp_linux_infra.server.diagnose_view import by_check, restore

CAPTURED = json.loads(OUTPUTS.read_text())["outputs"]
KEY_SERVICES = ["ssh", "cron", "rsyslog", "systemd-journald"]
STDOUT = {  # batch id -> the captured command the wrapper ran for it
    "meminfo": "cat /proc/meminfo", "df": "df -P -T -B 1", "ports": "ss -H -t -u -l -n",
    "failed_units": "systemctl --no-pager --failed --plain --no-legend list-units",
    "services": f"systemctl --no-pager --property {SERVICE_PROPERTIES} show "
                + " ".join(KEY_SERVICES),
    "errors": "journalctl --no-pager -p err -n200 --since -1h -o json --output-fields "
              + ",".join(JOURNAL_FIELDS) + " -q"}


def _host_outputs(i: int, stalled: bool) -> dict[str, Outcome]:
    cpus = (2, 4, 1, 8, 2)[(i - 1) % 5]
    per_cpu = (1.4, 0.35, 0.8, 2.3, 0.6)[(i - 1) % 5]  # load5: a warning, a critical, 3 fine
    load = (per_cpu * cpus * 1.1, per_cpu * cpus, per_cpu * cpus * 0.8)
    outs = {k: Outcome(v, "ok", 0, CAPTURED[v]["stdout"], "", False) for k, v in STDOUT.items()}
    outs["nproc"] = Outcome("nproc", "ok", 0, f"{cpus}\n", "", False)
    outs["loadavg"] = Outcome("cat /proc/loadavg", "ok", 0, " ".join(
        f"{x:.2f}" for x in load) + f" {i % 5 + 1}/{180 + 7 * i} {4000 + i}\n", "", False)
    if stalled:
        outs["loadavg"] = Outcome("cat /proc/loadavg", "timeout", None, "",
                                  "no answer within 10 s", False)
    return outs


def fleet(hosts: int, checks: list[str], faults: bool) -> dict:
    """diagnose_system's result for web-01..web-NN; with faults, web-02's load check times out
    and the last host is unreachable."""
    state = SimpleNamespace(settings=SimpleNamespace(key_services=KEY_SERVICES))
    reports = []
    for i in range(1, hosts + 1):
        host = Host(f"web-{i:02d}", f"10.0.0.{i}", 22, ("web",), {})
        if faults and i == hosts:
            reports.append({"host": host.name, "status": "unreachable",
                            "error": f"cannot connect to {host.name} (10.0.0.{i}:22): timed out"})
            continue
        outs = _host_outputs(i, stalled=faults and i == 2)
        call = SimpleNamespace(state=state, target=lambda h, outs=outs: SimpleNamespace(
            batch=lambda commands: {k: outs[k] for k in commands}))
        reports.append(diagnose_host(call, host, checks, "-1h"))
    summary = {"hosts": len(reports), **{s: [r["host"] for r in reports if r["status"] == s]
                                         for s in ("healthy", "degraded", "unreachable")}}
    return {"host": "web", "checks": checks, "summary": summary, "reports": reports}


@pytest.mark.parametrize("hosts", [1, 2, 5, 20])
@pytest.mark.parametrize("checks", [["load"], list(CHECKS)])
@pytest.mark.parametrize("faults", [False, True])
def test_the_toon_text_carries_the_whole_result(hosts, checks, faults):
    result = fleet(hosts, checks, faults)
    assert any(r.get("findings") for r in result["reports"]) or hosts == 1 and faults
    assert restore(toon_format.loads(toon_format.dumps(by_check(result)))) == result


@pytest.mark.parametrize(("hosts", "faults"), [(3, False), (5, False), (10, True), (20, True)])
def test_load_on_several_hosts_is_at_most_0_6_of_the_json(hosts, faults):
    result = fleet(hosts, ["load"], faults)
    as_toon = toon_format.dumps(by_check(result))
    assert len(as_toon.encode()) <= 0.6 * len(json.dumps(result).encode())
    assert f"load[{hosts - 2 * faults}]{{host,load1,load5,load15," in as_toon


def test_the_view_is_tables_by_check():
    view = by_check(fleet(3, ["load", "disk"], faults=True))
    assert view["hosts"] == [{"host": "web-01", "status": "degraded", "error": None},
                             {"host": "web-02", "status": "degraded", "error": None},
                             {"host": "web-03", "status": "unreachable",
                              "error": "cannot connect to web-03 (10.0.0.3:22): timed out"}]
    assert view["problems"] == [{"host": "web-02", "check": "load",
                                 "problem": "`cat /proc/loadavg` timeout: no answer within 10 s"}]
    assert [row["host"] for row in view["results"]["load"]] == ["web-01"]
    assert list(view["results"]["disk"]) == ["web-01", "web-02"]  # rows per host
    assert "error" not in by_check(fleet(2, ["load"], faults=False))["hosts"][0]


def test_journal_errors_are_a_table_of_groups_per_host():
    as_toon = toon_format.dumps(by_check(fleet(2, ["errors"], faults=False)))
    assert as_toon.count("groups[5]{count,unit,identifier,priority,first,last,example}:") == 2
    assert ('38,ssh.service,sshd,err,"2026-12-05T03:20:59Z","2026-12-05T03:21:59Z",'
            '"pam_env(sshd:session)' in as_toon)
