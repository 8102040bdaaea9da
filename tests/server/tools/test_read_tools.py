"""The read tools (hosts, health, services, logs, processes, network, containers, packages,
files) through a real MCP client, in both protocol eras, against real SSH and the real
wrapper (mcp_support): what a model sees."""

import pytest
from mcp import Client
from mcp_support import data, refused


@pytest.mark.anyio
async def test_diagnose_a_group_one_batch_per_host(estate, mode):
    e = estate()
    async with Client(e.server(), mode=mode) as client:
        report = await data(client, "diagnose_system", host="web")
    assert report["summary"] == {"hosts": 2, "healthy": [], "degraded": ["web-01", "web-02"],
                                 "unreachable": []}
    first = report["reports"][0]
    assert first["problems"] == {}
    assert set(first["checks"]) == {"load", "memory", "disk", "failed_units", "services",
                                    "ports", "errors"}
    assert {"severity": "warning", "check": "failed_units",
            "message": "lab-broken.service is failed (failed)"} in first["findings"]
    assert [s["unit"] for s in first["checks"]["services"]] == [
        "ssh.service", "cron.service", "rsyslog.service", "systemd-journald.service"]
    assert {"proto": "tcp", "state": "LISTEN", "address": "0.0.0.0", "port": 80,
            "process": None} in first["checks"]["ports"]
    assert first["checks"]["disk"][0]["mount"] == "/"
    assert first["checks"]["memory"]["total_bytes"] > 0
    errors = first["checks"]["errors"]  # 61 lines of the captured journal, grouped
    assert (errors["count"], errors["distinct"]) == (61, 5)
    assert [(g["count"], g["identifier"], g["unit"]) for g in errors["groups"]] == [
        (38, "sshd", "ssh.service"), (12, "lab-app", "lab-noise.service"),
        (6, "lab-app", "lab-noise.service"), (4, "lab-app", "lab-noise.service"),
        (1, "lab-app", "lab-outage.service")]
    assert errors["groups"][0] | {"example": ""} == {
        "count": 38, "unit": "ssh.service", "identifier": "sshd", "priority": "err",
        "first": "2026-12-05T03:20:59Z", "last": "2026-12-05T03:21:59Z", "example": ""}
    assert {"severity": "warning", "check": "errors", "message": (
        "61 error(s) in the journal, 5 distinct; the most frequent, 38x from sshd "
        "(ssh.service): pam_env(sshd:session): Unable to open env file: /etc/default/locale: "
        "No such file or directory")} in first["findings"]
    for sshd in e.hosts.values():
        assert len(sshd.commands) == 1 and sshd.commands[0].endswith(" mcp:batch")
    traces = {sshd.commands[0].split()[0] for sshd in e.hosts.values()}
    audit = [r for r in e.audit() if r["event"] == "tool_call"]
    assert traces == {f"mcp:trace={audit[0]['trace']}"}
    assert audit[0]["outcome"] == "ok" and e.misses == []


@pytest.mark.anyio
async def test_one_host_down_the_others_answer_and_the_server_lives(estate, mode):
    e = estate(["web-01", "web-02", "web-03"])
    e.hosts["web-02"].stop()
    async with Client(e.server(), mode=mode) as client:
        report = await data(client, "diagnose_system", host="web", checks=["load"])
        assert report["summary"]["unreachable"] == ["web-02"]
        assert report["summary"]["degraded"] == ["web-01", "web-03"]
        down = report["reports"][1]
        assert "cannot connect to 127.0.0.1" in down["error"]
        hosts = await data(client, "list_hosts")
        assert [h["reachable"] for h in hosts["hosts"]] == [True, False, True]
        text = await refused(client, "get_service_status", host="web-02", service="nginx")
        assert "web-02: cannot connect" in text and "list_hosts" in text
        assert (await data(client, "check_port", host="web-03", port=80))["listening"]


@pytest.mark.anyio
async def test_service_status_and_logs(estate, mode):
    async with Client(estate().server(), mode=mode) as client:
        broken = await data(client, "get_service_status", host="web-01", service="lab-broken")
        assert broken["properties"]["ActiveState"] == "failed"
        assert any("cannot read configuration" in r["message"] for r in broken["log"])
        logs = await data(client, "fetch_logs", host="web-01", lines=20, priority="err",
                          since="-1h")
        assert logs["command"] == ("journalctl -n 20 -o short-iso -q --no-hostname "
                                   "--since -1h -p err")
        assert logs["count"] == 20 and logs["entries"][0]["source"] == "systemd"
        hosts_file = await data(client, "fetch_logs", host="web-01", file="/etc/hosts",
                                pattern="localhost")
        assert [e["line"] for e in hosts_file["entries"]] == [
            "127.0.0.1\tlocalhost", "::1\t\tlocalhost ip6-localhost ip6-loopback"]
        assert "journal only" in await refused(client, "fetch_logs", host="web-01",
                                               file="/etc/hosts", since="-1h")


# tool, arguments, what to look at in the result, what it must be (output captured on a lab
# target, tests/data/target_outputs.json)
ANSWERS = [
    pytest.param("get_top_processes", {"sort_by": "memory", "limit": 3},
                 lambda r: [p["name"] for p in r["processes"]],
                 ["unbound", "systemd", "systemd-journald"], id="top-processes"),
    pytest.param("get_network_status", {},
                 lambda r: (r["interfaces"][0]["addresses"], r["nameservers"], r["problems"]),
                 (["127.0.0.1/8", "::1/128"], ["10.255.255.53"], {}), id="network-status"),
    pytest.param("check_port", {"port": 53, "protocol": "udp"},
                 lambda r: (r["listening"], r["sockets"][0]["address"]), (True, "127.0.0.1"),
                 id="check-port-udp"),
    pytest.param("dns_lookup", {"name": "localhost"},
                 lambda r: (r["system_resolver"], r["dns"]["exit_code"]),
                 (["::1", "127.0.0.1"], 1), id="dns-lookup"),
    pytest.param("list_containers", {"runtime": "docker"},
                 lambda r: [(c["names"], c["status"]) for c in r["runtimes"]["docker"]],
                 [("web", "Up 2 hours"), ("cache", "Exited (137) 5 minutes ago")],
                 id="list-containers"),
    pytest.param("container_logs", {"container": "web"},
                 lambda r: any("Connection refused" in line for line in r["lines"]), True,
                 id="container-logs"),
    pytest.param("check_updates", {}, lambda r: r["upgradable"], 0, id="check-updates"),
    pytest.param("read_file", {"path": "/etc/hostname"},
                 lambda r: (r["lines"], r["more"]), (["t4-01"], False), id="read-file"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("tool", "args", "look", "expected"), ANSWERS)
async def test_a_tool_reads_the_hosts_answer(estate, tool, args, look, expected):
    e = estate(["web-01"])
    async with Client(e.server()) as client:
        result = await data(client, tool, host="web-01", **args)
    assert look(result) == expected
    assert e.misses == []


@pytest.mark.anyio
async def test_read_file_ranges(estate):
    numbered = "".join(f"line {i}\n" for i in range(1, 31))
    e = estate(["web-01"], extra_outputs={
        "head -n 11 /etc/hosts": {"stdout": "".join(numbered.splitlines(True)[:11])},
        "tail -n +25 /etc/hosts": {"stdout": "".join(numbered.splitlines(True)[24:])}})
    async with Client(e.server()) as client:
        top = await data(client, "read_file", host="web-01", path="/etc/hosts", max_lines=10)
        assert (top["lines"][-1], len(top["lines"]), top["more"]) == ("line 10", 10, True)
        end = await data(client, "read_file", host="web-01", path="/etc/hosts", start_line=25,
                         max_lines=10)
        assert (end["lines"], end["more"]) == ([f"line {i}" for i in range(25, 31)], False)
        assert end["command"] == "tail -n +25 /etc/hosts"


@pytest.mark.anyio
async def test_apt_upgradable_parsing(estate):
    listing = ("Listing...\nopenssl/stable-security 3.0.15-1~deb12u1 amd64 [upgradable from: "
               "3.0.14-1~deb12u2]\ntzdata/stable-updates 2024b-0+deb12u1 all [upgradable "
               "from: 2024a-0+deb12u1]\n")
    e = estate(["web-01"], extra_outputs={"apt list --upgradable": {"stdout": listing}})
    async with Client(e.server()) as client:
        updates = await data(client, "check_updates", host="web-01")
    assert (updates["upgradable"], updates["security"]) == (2, 1)
    assert updates["packages"][0] == {"package": "openssl", "suites": "stable-security",
                                      "version": "3.0.15-1~deb12u1", "arch": "amd64",
                                      "from": "3.0.14-1~deb12u2", "security": True}


@pytest.mark.anyio
async def test_apt_killed_by_the_no_write_limit_is_explained(estate):
    e = estate(["web-01"], extra_outputs={"apt list --upgradable": {"exit": 153}})
    async with Client(e.server()) as client:
        text = await refused(client, "check_updates", host="web-01")
    assert "SIGXFSZ" in text and "packages plugin" in text
