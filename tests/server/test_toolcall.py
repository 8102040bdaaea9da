"""A tool call (server/toolcall.py): its host resolved or refused with the way out, bad
arguments refused by their schema, SSH failures named, and one audit record whose trace id
joins the target's."""

import pytest
from mcp import Client
from mcp_support import data, refused
from ssh_support import known_hosts_line, new_key

MISUSE = [
    pytest.param("get_top_processes", {"host": "web-1"},
                 ["'web-1' is neither a host nor a group", "did you mean"], id="unknown-host"),
    pytest.param("get_top_processes", {"host": "web"}, ["is a group of 2 hosts"],
                 id="a-group-where-one-host-is-needed"),
    pytest.param("get_service_status", {"host": "web-01", "service": "-x"}, ["service"],
                 id="bad-argument"),  # pydantic's pattern message
]


@pytest.mark.anyio
@pytest.mark.parametrize(("tool", "args", "said"), MISUSE)
async def test_unknown_host_group_misuse_and_bad_arguments(estate, tool, args, said):
    async with Client(estate().server()) as client:
        text = await refused(client, tool, **args)
        assert all(words in text for words in said), text
        assert (await data(client, "list_hosts", check=False))["hosts"]


@pytest.mark.anyio
async def test_host_key_mismatch_is_refused_and_named(estate):
    e = estate()
    wrong = known_hosts_line(e.hosts["web-01"].host("web-01"), new_key())
    lines = e.settings.known_hosts.read_text().splitlines(keepends=True)
    e.settings.known_hosts.write_text(wrong + lines[1])
    async with Client(e.server()) as client:
        text = await refused(client, "run_diagnostic", host="web-01", command="uptime")
        assert "HOST KEY MISMATCH" in text and "hosts trust web-01" in text
        assert (await data(client, "run_diagnostic", host="web-02", command="uptime"))
    assert e.hosts["web-01"].commands == []


@pytest.mark.anyio
async def test_audit_redacts_and_joins_the_target(estate):
    e = estate(["web-01"])
    async with Client(e.server()) as client:
        await refused(client, "run_diagnostic", host="web-01",
                      command="mysql --password=hunter2 -e 'select 1'")
    records = [r for r in e.audit() if r["event"] == "tool_call"]
    assert records[0]["arguments"]["command"] == "mysql --password=[REDACTED] -e 'select 1'"
    assert "hunter2" not in e.settings.audit_log.read_text()
    assert e.hosts["web-01"].commands[0].startswith(f"mcp:trace={records[0]['trace']} mysql")


def test_a_tool_takes_its_call_first():
    from mcp_linux_infra.server.toolcall import READ_ONLY, tool

    def no_call(host: str) -> None:
        """Not a tool: it would get no call state."""
    with pytest.raises(TypeError, match="must take `call: Call` first"):
        tool(READ_ONLY, title="No call")(no_call)
