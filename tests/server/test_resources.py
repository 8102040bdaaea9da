"""The resources (hosts, a host's policy) and the triage prompt (server/resources.py)."""

import json

import pytest
from mcp import Client


@pytest.mark.anyio
async def test_resources_and_prompt(estate, mode):
    async with Client(estate().server(), mode=mode) as client:
        hosts = await client.read_resource("linux-infra://hosts")
        assert [h["name"] for h in json.loads(hosts.contents[0].text)] == ["web-01", "web-02"]
        policy = await client.read_resource("linux-infra://hosts/web-01/policy")
        assert "_effective" in json.loads(policy.contents[0].text)
        prompt = await client.get_prompt("triage", {"host": "web-01", "symptom": "slow"})
        assert "diagnose_system(host='web-01')" in prompt.messages[0].content.text
