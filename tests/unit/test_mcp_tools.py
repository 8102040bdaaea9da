"""The MCP server in-process, in both protocol eras, against real SSH and the real wrapper
(see mcp_support): what a model sees, including every way a call can fail."""

import json

import pytest
import toon_format
import yaml
from mcp import Client
from mcp_support import make_estate
from ssh_support import known_hosts_line, new_key

from mcp_linux_infra.server.diagnose_view import restore

MODES = ["auto", "legacy"]
TOOLS = {"list_hosts", "diagnose_system", "get_service_status", "fetch_logs",
         "get_top_processes", "get_network_status", "check_port", "dns_lookup",
         "list_containers", "container_logs", "check_updates", "read_file", "run_diagnostic",
         "explain_command", "analyze_command", "list_command_plugins", "get_plugin_details",
         "search_commands", "get_learning_suggestions", "get_learning_stats"}
# the action tools (tests/unit/test_approval_tools.py): annotated apart
ACTION_TOOLS = {"list_pra_actions", "propose_pra_action", "get_proposal", "list_proposals",
                "execute_pra_action", "verify_service"}



@pytest.fixture
def estate(tmp_path):
    made = []

    def make(names=("web-01", "web-02"), **kwargs):
        e = make_estate(tmp_path, list(names), **kwargs)
        made.append(e)
        return e
    yield make
    for e in made:
        e.close()


async def call(client, tool, **args):
    result = await client.call_tool(tool, args)
    text = result.content[0].text if result.content else ""
    if result.is_error:
        return None, text
    return result, text


async def data(client, tool, **args):
    result, text = await call(client, tool, format="json", **args)
    assert result is not None, text
    assert json.loads(text) == result.structured_content
    return result.structured_content


async def error(client, tool, **args):
    result, text = await call(client, tool, **args)
    assert result is None, f"{tool} should have failed: {text[:300]}"
    return text


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_catalogue_all_read_only(estate, mode):
    async with Client(estate().server(), mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == TOOLS | ACTION_TOOLS
        for tool in (tools[name] for name in TOOLS):
            assert tool.annotations.read_only_hint is True, tool.name
            assert tool.annotations.destructive_hint is False, tool.name
            assert tool.description, tool.name
            assert "ctx" not in tool.input_schema["properties"], tool.name
        assert tools["diagnose_system"].input_schema["required"] == ["target"]
        prompts = (await client.list_prompts()).prompts
        assert [p.name for p in prompts] == ["triage"]
        resources = (await client.list_resources()).resources
        assert [str(r.uri) for r in resources] == ["linux-infra://hosts"]
        templates = (await client.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["linux-infra://hosts/{name}/policy"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_diagnose_a_group_one_batch_per_host(estate, mode):
    e = estate()
    async with Client(e.server(), mode=mode) as client:
        report = await data(client, "diagnose_system", target="web")
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
    for sshd in e.hosts.values():
        assert len(sshd.commands) == 1 and sshd.commands[0].endswith(" mcp:batch")
    traces = {sshd.commands[0].split()[0] for sshd in e.hosts.values()}
    audit = [r for r in e.audit() if r["event"] == "tool_call"]
    assert traces == {f"mcp:trace={audit[0]['trace']}"}
    assert audit[0]["outcome"] == "ok" and e.misses == []


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_one_host_down_the_others_answer_and_the_server_lives(estate, mode):
    e = estate(["web-01", "web-02", "web-03"])
    e.hosts["web-02"].stop()
    async with Client(e.server(), mode=mode) as client:
        report = await data(client, "diagnose_system", target="web", checks=["load"])
        assert report["summary"]["unreachable"] == ["web-02"]
        assert report["summary"]["degraded"] == ["web-01", "web-03"]
        down = report["reports"][1]
        assert "cannot connect to 127.0.0.1" in down["error"]
        hosts = await data(client, "list_hosts")
        assert [h["reachable"] for h in hosts["hosts"]] == [True, False, True]
        text = await error(client, "get_service_status", host="web-02", service="nginx")
        assert "web-02: cannot connect" in text and "list_hosts" in text
        assert (await data(client, "check_port", host="web-03", port=80))["listening"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
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
        assert "journal only" in await error(client, "fetch_logs", host="web-01",
                                             file="/etc/hosts", since="-1h")


@pytest.mark.anyio
async def test_the_other_diagnostic_tools(estate):
    e = estate()
    async with Client(e.server()) as client:
        top = await data(client, "get_top_processes", host="web-01", sort_by="memory", limit=3)
        assert [p["name"] for p in top["processes"]] == ["unbound", "systemd",
                                                         "systemd-journald"]
        net = await data(client, "get_network_status", host="web-01")
        assert net["interfaces"][0]["addresses"] == ["127.0.0.1/8", "::1/128"]
        assert net["nameservers"] == ["10.255.255.53"] and net["problems"] == {}
        udp = await data(client, "check_port", host="web-01", port=53, protocol="udp")
        assert udp["listening"] and udp["sockets"][0]["address"] == "127.0.0.1"
        dns = await data(client, "dns_lookup", host="web-01", name="localhost")
        assert dns["system_resolver"] == ["::1", "127.0.0.1"] and dns["dns"]["exit_code"] == 1
        containers = await data(client, "list_containers", host="web-01", runtime="docker")
        assert [(c["names"], c["status"]) for c in containers["runtimes"]["docker"]] == [
            ("web", "Up 2 hours"), ("cache", "Exited (137) 5 minutes ago")]
        logs = await data(client, "container_logs", host="web-01", container="web")
        assert any("Connection refused" in line for line in logs["lines"])
        updates = await data(client, "check_updates", host="web-01")
        assert updates["upgradable"] == 0
        hostname = await data(client, "read_file", host="web-01", path="/etc/hostname")
        assert hostname["lines"] == ["t4-01"] and hostname["more"] is False
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
        text = await error(client, "check_updates", host="web-01")
    assert "SIGXFSZ" in text and "packages plugin" in text


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_refusals_explained_recorded_and_learned(estate, mode):
    e = estate()
    async with Client(e.server(), mode=mode) as client:
        ok = await data(client, "run_diagnostic", host="web-01", command="uptime")
        assert "load average" in ok["stdout"] and ok["exit_code"] == 0
        text = await error(client, "run_diagnostic", host="web-01", command="nc -z db 5432")
        assert "web-01 refused `nc -z db 5432`: unknown_command" in text
        assert "Allowed forms close to it:" in text and "mcp_infra_readonly_extra_commands" in text
        assert "Risk if allowed: MEDIUM" in text
        text = await error(client, "run_diagnostic", host="web-01",
                           command="journalctl --vacuum-size=1M")
        assert "unknown_option" in text and "journalctl [" in text and "HIGH" in text
        shadow = await error(client, "read_file", host="web-01", path="/etc/shadow")
        assert "web-01 refused `head -n 201 /etc/shadow`" in shadow
        for _ in range(2):
            await error(client, "run_diagnostic", host="web-02", command="tree -L 2 /etc")
        stats = await data(client, "get_learning_stats")
        assert stats["refusals"] == 5 and stats["by_host"] == {"web-01": 3, "web-02": 2}
        assert stats["top_commands"]["tree"] == 2
        none_yet = await data(client, "get_learning_suggestions")  # 3 times, a day old
        assert none_yet["proposed"] == [] and none_yet["ansible_vars_snippet"] == ""
        ideas = await data(client, "get_learning_suggestions", min_count=2, min_age_hours=0)
    assert [p["command"] for p in ideas["proposed"]] == ["tree"]
    snippet = yaml.safe_load(ideas["ansible_vars_snippet"])
    assert snippet["mcp_infra_readonly_extra_commands"]["tree"]["options"] == {"-L": None}
    assert "REVIEW" in ideas["ansible_vars_snippet"]


@pytest.mark.anyio
async def test_explain_analyze_and_the_catalog(estate):
    async with Client(estate().server()) as client:
        explained = await data(client, "explain_command", host="web-01", command="ss -tlnp")
        assert explained["allowed"] and explained["rule"] == "network/ss"
        refused = await data(client, "explain_command", host="web-01", command="tail -f /x")
        assert refused["allowed"] is False and refused["similar_allowed"]
        risk = await data(client, "analyze_command", command="find / -exec rm {} +",
                          host="web-01")
        assert (risk["risk"], risk["recommendation"], risk["host"]["allowed"]) == (
            "CRITICAL", "BLOCK", False)
        assert risk["reasons"][0] == "`-exec` lets find run other programs or code"
        plugins = await data(client, "list_command_plugins", host="web-01")
        assert {p["plugin"] for p in plugins["plugins"]} >= {"network", "systemd"}
        network = await data(client, "get_plugin_details", host="web-01", plugin="network")
        assert "ss" in [c["name"] for c in network["commands"]]
        assert "no plugin 'nope'" in await error(client, "get_plugin_details", host="web-01",
                                                 plugin="nope")
        found = await data(client, "search_commands", host="web-01", query="journal")
        assert "journalctl" in [m["command"] for m in found["matches"]]


@pytest.mark.anyio
async def test_formats(estate):
    async with Client(estate().server()) as client:
        as_json = await data(client, "list_hosts", check=False)
        toon_result, toon_text = await call(client, "list_hosts", check=False, format="toon")
        _, text = await call(client, "list_hosts", check=False, format="text")
    assert toon_result.structured_content is None
    assert toon_format.loads(toon_text) == as_json
    assert len(toon_text) < 0.8 * len(json.dumps(as_json))
    assert text.splitlines()[:2] == ["hosts:", "  name    groups  address    port"]


def _values(data) -> int:
    """Bytes of the values alone, one separator each: no lossless layout needs fewer."""
    if isinstance(data, dict):
        return sum(map(_values, data.values()))
    if isinstance(data, list):
        return sum(map(_values, data))
    return len(str(data).encode()) + 1


@pytest.mark.anyio
async def test_toon_carries_what_json_does(estate):
    """The TOON text decodes to the JSON result (diagnose_system's through its by-check view,
    tests/unit/test_diagnose_view.py). The catalog's results are mostly prose, descriptions
    and option lists: their values alone weigh over 0.6 of the JSON, so there TOON is held
    to little more than its values."""
    async with Client(estate().server()) as client:
        for tool, args in [("diagnose_system", {"target": "web", "checks": ["load"]}),
                           ("diagnose_system", {"target": "web-01"}),
                           ("list_command_plugins", {"host": "web-01"}),
                           ("search_commands", {"host": "web-01", "query": "-"})]:
            as_json = await data(client, tool, **args)
            _, toon_text = await call(client, tool, format="toon", **args)
            decoded = toon_format.loads(toon_text)
            assert (restore(decoded) if tool == "diagnose_system" else decoded) == as_json
            if tool != "diagnose_system":
                assert _values(as_json) > 0.6 * len(json.dumps(as_json))
                assert len(toon_text.encode()) < 1.1 * _values(as_json)


@pytest.mark.anyio
async def test_unknown_host_group_misuse_and_bad_arguments(estate):
    async with Client(estate().server()) as client:
        text = await error(client, "get_top_processes", host="web-1")
        assert "'web-1' is neither a host nor a group" in text and "did you mean" in text
        text = await error(client, "get_top_processes", host="web")
        assert "is a group of 2 hosts" in text
        text = await error(client, "get_service_status", host="web-01", service="-x")
        assert "service" in text  # pydantic's pattern message
        assert (await data(client, "list_hosts", check=False))["hosts"]


@pytest.mark.anyio
async def test_host_key_mismatch_is_refused_and_named(estate):
    e = estate()
    wrong = known_hosts_line(e.hosts["web-01"].host("web-01"), new_key())
    lines = e.settings.known_hosts.read_text().splitlines(keepends=True)
    e.settings.known_hosts.write_text(wrong + lines[1])
    async with Client(e.server()) as client:
        text = await error(client, "run_diagnostic", host="web-01", command="uptime")
        assert "HOST KEY MISMATCH" in text and "hosts trust web-01" in text
        assert (await data(client, "run_diagnostic", host="web-02", command="uptime"))
    assert e.hosts["web-01"].commands == []


@pytest.mark.anyio
async def test_target_truncation_and_target_timeout(estate):
    e = estate(["web-01"], policy_defaults={"timeout_s": 1},
               extra_outputs={"cat /etc/hostname": {"stdout": "x" * 1000, "repeat": 400},
                              "nproc": {"stdout": "2\n", "sleep": 5}})
    async with Client(e.server()) as client:
        big = await data(client, "run_diagnostic", host="web-01", command="cat /etc/hostname")
        assert big["truncated"] is True and len(big["stdout"]) <= 262144 + 1
        assert "output truncated" not in big["stdout"]
        text = await error(client, "run_diagnostic", host="web-01", command="nproc")
        assert "timed out on web-01" in text


@pytest.mark.anyio
async def test_client_deadline(estate):
    e = estate(["web-01"], command_timeout=0.5,
               extra_outputs={"nproc": {"stdout": "2\n", "sleep": 3}})
    async with Client(e.server()) as client:
        text = await error(client, "run_diagnostic", host="web-01", command="nproc")
        assert "no complete answer within 0.5 s" in text
        assert (await data(client, "run_diagnostic", host="web-01", command="uptime"))


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_resources_and_prompt(estate, mode):
    async with Client(estate().server(), mode=mode) as client:
        hosts = await client.read_resource("linux-infra://hosts")
        assert [h["name"] for h in json.loads(hosts.contents[0].text)] == ["web-01", "web-02"]
        policy = await client.read_resource("linux-infra://hosts/web-01/policy")
        assert "_effective" in json.loads(policy.contents[0].text)
        prompt = await client.get_prompt("triage", {"host": "web-01", "symptom": "slow"})
        assert "diagnose_system(target='web-01')" in prompt.messages[0].content.text


@pytest.mark.anyio
async def test_audit_redacts_and_joins_the_target(estate):
    e = estate(["web-01"])
    async with Client(e.server()) as client:
        await error(client, "run_diagnostic", host="web-01",
                    command="mysql --password=hunter2 -e 'select 1'")
    records = [r for r in e.audit() if r["event"] == "tool_call"]
    assert records[0]["arguments"]["command"] == "mysql --password=[REDACTED] -e 'select 1'"
    assert "hunter2" not in e.settings.audit_log.read_text()
    assert e.hosts["web-01"].commands[0].startswith(f"mcp:trace={records[0]['trace']} mysql")


@pytest.mark.anyio
async def test_inventory_changes_are_picked_up_without_a_restart(estate):
    e = estate()
    inventory = e.settings.inventory[0]
    async with Client(e.server()) as client:
        assert len((await data(client, "list_hosts", check=False))["hosts"]) == 2
        port = e.hosts["web-01"].port
        inventory.write_text(inventory.read_text()
                             + f"[db]\ndb-01 ansible_host=127.0.0.1 ansible_port={port}\n")
        hosts = await data(client, "list_hosts", target="db")
        assert [(h["name"], h["reachable"]) for h in hosts["hosts"]] == [("db-01", True)]
        assert hosts["groups"] == {"db": 1, "web": 2}


@pytest.mark.anyio
async def test_destinations_and_costly_patterns_are_refused_with_the_way_out(estate):
    """Issue 9: a name the host's policy does not list is never looked up, and the model is
    told who can list it; a pattern that would cost the host its timeout is refused."""
    e = estate()
    async with Client(e.server()) as client:
        text = await error(client, "dns_lookup", host="web-01", name="data.attacker.example")
        assert "destination_not_allowed" in text and "mcp_infra_network_destinations" in text
        text = await error(client, "run_diagnostic", host="web-01",
                           command="dig @1.1.1.1 localhost")
        assert "bad_value" in text and "servers and resolvers cannot be chosen" in text
        text = await error(client, "run_diagnostic", host="web-01", command="ping 203.0.113.7")
        assert "destination_not_allowed" in text and "mcp_infra_network_destinations" in text
        assert "mcp_infra_readonly_extra_commands" not in text
        text = await error(client, "fetch_logs", host="web-01", pattern="(.{1,1000}){1,10}")
        assert "bad_value" in text and "what a pattern may cost the host is bounded" in text
        assert "change the value" in text
        stats = await data(client, "get_learning_stats")
        assert stats["refusals"] == 5
    assert e.misses == []
