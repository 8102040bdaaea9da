"""Reading a host's answer (server/answers.py): output the target cut, a command the target
or the client stopped, and refusals that say why and what would change them, values the
host refuses included."""

import pytest
from mcp import Client
from mcp_support import data, refused


@pytest.mark.anyio
async def test_target_truncation_and_target_timeout(estate):
    e = estate(["web-01"], policy_defaults={"timeout_s": 1},
               extra_outputs={"cat /etc/hostname": {"stdout": "x" * 1000, "repeat": 400},
                              "nproc": {"stdout": "2\n", "sleep": 5}})
    async with Client(e.server()) as client:
        big = await data(client, "run_diagnostic", host="web-01", command="cat /etc/hostname")
        assert big["truncated"] is True and len(big["stdout"]) <= 262144 + 1
        assert "output truncated" not in big["stdout"]
        text = await refused(client, "run_diagnostic", host="web-01", command="nproc")
        assert "timed out on web-01" in text


@pytest.mark.anyio
async def test_client_deadline(estate):
    e = estate(["web-01"], command_timeout=0.5,
               extra_outputs={"nproc": {"stdout": "2\n", "sleep": 3}})
    async with Client(e.server()) as client:
        text = await refused(client, "run_diagnostic", host="web-01", command="nproc")
        assert "no complete answer within 0.5 s" in text
        assert (await data(client, "run_diagnostic", host="web-01", command="uptime"))


@pytest.mark.anyio
async def test_destinations_and_costly_patterns_are_refused_with_the_way_out(estate):
    """Issue 9: a name the host's policy does not list is never looked up, and the model is
    told who can list it; a pattern that would cost the host its timeout is refused."""
    e = estate()
    async with Client(e.server()) as client:
        text = await refused(client, "dns_lookup", host="web-01", name="data.attacker.example")
        assert "destination_not_allowed" in text and "mcp_infra_network_destinations" in text
        text = await refused(client, "run_diagnostic", host="web-01",
                             command="dig @1.1.1.1 localhost")
        assert "bad_value" in text and "servers and resolvers cannot be chosen" in text
        text = await refused(client, "run_diagnostic", host="web-01", command="ping 203.0.113.7")
        assert "destination_not_allowed" in text and "mcp_infra_network_destinations" in text
        assert "mcp_infra_readonly_extra_commands" not in text
        text = await refused(client, "fetch_logs", host="web-01", pattern="(.{1,1000}){1,10}")
        assert "bad_value" in text and "what a pattern may cost the host is bounded" in text
        assert "change the value" in text
        stats = await data(client, "command_catalog", mode="refusals")
        assert stats["refusals"] == 5
    assert e.misses == []


# A value the host refuses reaches the model as the host's refusal: the reason, the value,
# and what to change (the client only keeps an operand one printable word, not an option).
REFUSED_VALUES = [
    pytest.param("get_service_status", {"service": "a b"}, ["bad_value", "'a b'"],
                 id="unit-with-a-space"),
    pytest.param("get_service_status", {"service": "nginx;reboot"}, ["bad_value", "nginx;reboot"],
                 id="unit-with-shell-syntax"),
    pytest.param("fetch_logs", {"unit": "a/b"}, ["bad_value", "'a/b' does not match"],
                 id="journal-unit"),
    pytest.param("container_logs", {"container": "web;x"},
                 ["bad_value", "'web;x' does not match"], id="container"),
    pytest.param("get_service_status", {"service": "\u202ex"},
                 ["unicode_format_char", "U+202E", "a character the host refuses"],
                 id="bidi-override"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("tool", "args", "said"), REFUSED_VALUES)
async def test_a_value_the_host_refuses_is_explained(estate, tool, args, said):
    e = estate(["web-01"])
    async with Client(e.server()) as client:
        text = await refused(client, tool, host="web-01", **args)
    assert "web-01 refused `" in text and all(words in text for words in said), text
    assert e.misses == []
