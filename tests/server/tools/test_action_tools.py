"""The action tools (server/tools/actions.py) through a real MCP client (both eras,
in-process and over HTTP with scoped tokens) against the real action tier (approval_support):
what the model can and cannot do, and that nothing the server exposes can reach the operator
key."""

import json
import os
import re
import subprocess
import sys
import textwrap

import httpx2
import pytest
from approval_support import make_action_estate
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_support import ok, refused, serve_http, tokens_file
from paths_support import REPO
from pra_support import HOST

from mcp_linux_infra.approvals.decide import approve


@pytest.mark.anyio
async def test_annotations_and_no_tool_that_approves(action_estate, mode):
    async with Client(action_estate.server(), mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    execute = tools["execute_pra_action"].annotations
    assert execute.destructive_hint is True and execute.read_only_hint is False
    assert tools["propose_pra_action"].annotations.read_only_hint is False
    assert tools["propose_pra_action"].annotations.destructive_hint is False
    for name in ("list_pra_actions", "get_proposal", "list_proposals", "get_service_status"):
        assert tools[name].annotations.read_only_hint is True, name
    for tool in tools.values():
        words = json.dumps(tool.input_schema).lower() + tool.name
        assert "approve" not in tool.name and "sign" not in tool.name
        assert "signature" not in words and "nonce" not in words and "approver" not in words


@pytest.mark.anyio
async def test_propose_approve_execute_and_every_refusal(action_estate, mode):
    target = action_estate.root.file("a")
    async with Client(action_estate.server(), mode=mode) as client:
        listed = await ok(client, "list_pra_actions", host=HOST)
        names = [a["name"] for a in listed["actions"]]
        assert "touch_file" in names and listed["max_approval_window_s"] == 3600
        text = await refused(client, "propose_pra_action", host=HOST, action="rm_rf",
                             params={}, rationale="because I can")
        assert "offers no action 'rm_rf'" in text and "touch_file" in text
        text = await refused(client, "propose_pra_action", host=HOST, action="touch_file",
                             params={"file": "/etc/passwd"}, rationale="because I can")
        assert "is not allowed" in text and target in text  # the allowed values
        text = await refused(client, "propose_pra_action", host=HOST, action="touch_file",
                             params={"file": target, "mode": "x"}, rationale="because I can")
        assert "unknown params ['mode']" in text
        proposed = await ok(client, "propose_pra_action", host=HOST, action="touch_file",
                            params={"file": target}, rationale="the app needs the file a")
        pid = proposed["proposal_id"]
        assert proposed["state"] == "pending" and proposed["preview"]["available"] is False
        assert f"mcp-linux-infra approvals approve {pid} --as NAME" in proposed["next_step"]
        assert proposed["console_url"] == f"http://localhost:8766/p/{pid}"
        assert proposed["console_url"] in proposed["next_step"]
        assert proposed["approvals"] == {"summary": "0 of 1 approvals", "required": 1,
                                         "approved_by": []}
        text = await refused(client, "execute_pra_action", proposal_id=pid)
        assert "not approved yet" in text and f"approvals approve {pid}" in text
        approve(action_estate.store, pid, 600, "alice", action_estate.settings.operator_key)
        done = await ok(client, "execute_pra_action", proposal_id=pid)
        assert done["state"] == "succeeded" and done["outcome"] == "changed"
        assert done["steps"]["run"] == {"exit": 0, "ok": True, "timed_out": False}
        assert os.path.exists(target)
        text = await refused(client, "execute_pra_action", proposal_id=pid)
        assert "already executed: succeeded" in text and "works once" in text
        got = await ok(client, "get_proposal", proposal_id=pid)
        assert [(h["event"], h["to_state"]) for h in got["history"]] == [
            ("created", "pending"), ("document_prepared", "pending"),
            ("approval_added", "pending"), ("approved", "approved"),
            ("executing", "executing"), ("succeeded", "succeeded")]
        assert got["result"]["outcome"] == "changed" and "signature" not in got
        times = [got["created_at"], got["updated_at"], got["not_after"], got["sent_at"],
                 *(h["at"] for h in got["history"]),
                 *(a["at"] for a in got["approvals"]["records"])]
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in times), times
        assert "BEGIN SSH SIGNATURE" not in json.dumps(got)
        assert got["approvals"]["summary"] == "1 of 1 approvals"
        assert got["approvals"]["approved_by"] == ["alice"]
        assert got["approvals"]["records"][0]["method"] == "cli"
        other = await ok(client, "propose_pra_action", host=HOST, action="touch_file",
                         params={"file": action_estate.root.file("b")}, rationale="and the file b")
        action_estate.store.reject(other["proposal_id"], "alice", "b is not needed")
        text = await refused(client, "execute_pra_action", proposal_id=other["proposal_id"])
        assert "rejected: b is not needed" in text
        listing = await ok(client, "list_proposals", state="rejected")
        assert [p["id"] for p in listing["proposals"]] == [other["proposal_id"]]
        assert "no proposal" in await refused(client, "get_proposal", proposal_id="p00000000")
        assert "pattern" in await refused(client, "get_proposal", proposal_id="../etc")
    assert [r["outcome"] for r in action_estate.root.log()] == ["changed"]


@pytest.mark.anyio
async def test_two_operators_one_of_two_then_two_of_two(action_estate):
    """The host's catalog asks two operators for touch_file: the model sees "1 of 2
    approvals" and who approved, execution is refused until the second one signed."""
    catalog = json.loads((action_estate.root.path / "etc/mcp-infra/actions.json").read_text())
    catalog["actions"]["touch_file"]["approvals"] = 2
    (action_estate.root.path / "etc/mcp-infra/actions.json").write_text(json.dumps(catalog))
    keys = action_estate.root.keys
    async with Client(action_estate.server()) as client:
        proposed = await ok(client, "propose_pra_action", host=HOST, action="touch_file",
                            params={"file": action_estate.root.file("a")},
                            rationale="the app needs the file a")
        pid = proposed["proposal_id"]
        assert proposed["approvals"]["summary"] == "0 of 2 approvals"
        assert "2 more distinct operators must approve it" in proposed["next_step"]
        approve(action_estate.store, pid, 600, "alice", keys.dir / "alice")
        got = await ok(client, "get_proposal", proposal_id=pid)
        assert got["state"] == "pending" and got["approvals"]["summary"] == "1 of 2 approvals"
        assert got["approvals"]["approved_by"] == ["alice"]
        assert got["next_step"].startswith("1 of 2 approvals: an operator must approve it")
        text = await refused(client, "execute_pra_action", proposal_id=pid)
        assert "not approved yet (1 of 2 approvals: alice)" in text
        approve(action_estate.store, pid, 600, "bob", keys.dir / "bob")
        listing = await ok(client, "list_proposals", state="approved")
        assert listing["proposals"][0]["approvals"] == "2 of 2 approvals"
        done = await ok(client, "execute_pra_action", proposal_id=pid)
    assert done["state"] == "succeeded"
    assert [r["principals"] for r in action_estate.root.log()] == [["alice", "bob"]]


@pytest.mark.anyio
async def test_a_target_of_the_previous_version_is_refused_proposals_until_upgraded(
        tmp_path, keys, root, previous_tier):
    """The previous version's pra-exec verifies v1 documents only, and this server signs
    v2 only: its catalog is listed, a proposal is refused with the upgrade to do."""
    previous = previous_tier.action_root(tmp_path / "previous", HOST)
    estate = make_action_estate(tmp_path, keys, root, pra_exec=previous_tier.handler(
        previous, "wrappers/pra-exec"))
    try:
        async with Client(estate.server()) as client:
            listed = await ok(client, "list_pra_actions", host=HOST)
            assert "start_service" in [a["name"] for a in listed["actions"]]
            text = await refused(client, "propose_pra_action", host=HOST,
                                 action="start_service", params={"unit": "nginx"},
                                 rationale="nginx is down since 10:02")
            assert "older than approval documents v2" in text
            assert "deploy this version's role" in text
            assert (await ok(client, "list_proposals"))["count"] == 0
    finally:
        estate.close()


# -- free text for the operator's screen: printable on one line, or refused with the reason -
BAD_RATIONALES = [
    pytest.param("restart it\nhost lab-01", "control_char", "U+000A (Cc) at offset 10",
                 id="newline"),
    pytest.param("restart\tit now", "control_char", "U+0009 (Cc) at offset 7", id="tab"),
    pytest.param("ok\x1b[2A\x1b[1;1Hhost lab-01", "control_char", "U+001B (Cc) at offset 2",
                 id="esc-cursor-movement"),
    pytest.param("title \x1b]0;pwned\x07 set", "control_char", "U+001B (Cc) at offset 6",
                 id="osc-title"),
    pytest.param("delete \x7f here", "control_char", "U+007F (Cc) at offset 7", id="del"),
    pytest.param("c1 csi \x9b2A here", "control_char", "U+009B (Cc) at offset 7", id="c1-csi"),
    pytest.param("the file \u202eBD-dorp", "unicode_format_char", "U+202E (Cf) at offset 9",
                 id="bidi-override"),
    pytest.param("isolate \u2066lab-01\u2069", "unicode_format_char",
                 "U+2066 (Cf) at offset 8", id="bidi-isolate"),
    pytest.param("zero\u200bwidth space", "unicode_format_char", "U+200B (Cf) at offset 4",
                 id="zero-width-space"),
    pytest.param("\ufeffbyte order mark", "unicode_format_char", "U+FEFF (Cf) at offset 0",
                 id="bom"),
    pytest.param("line\u2028separator", "non_printable_char", "U+2028 (Zl) at offset 4",
                 id="line-separator"),
    pytest.param("no\u00a0break space", "non_printable_char", "U+00A0 (Zs) at offset 2",
                 id="nbsp"),
    pytest.param("private \ue000 use", "non_printable_char", "U+E000 (Co) at offset 8",
                 id="private-use"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("rationale", "reason", "detail"), BAD_RATIONALES)
async def test_a_rationale_that_is_not_printable_text_is_refused_with_the_reason(
        action_estate, rationale, reason, detail):
    async with Client(action_estate.server()) as client:
        text = await refused(client, "propose_pra_action", host=HOST, action="touch_file",
                             params={"file": action_estate.root.file("a")}, rationale=rationale)
        assert f"rationale refused: {reason}: {detail}" in text, text
        assert "printable text on one line" in text and "(trace " in text
        assert (await ok(client, "list_proposals"))["count"] == 0
    assert action_estate.store.find() == []


@pytest.mark.anyio
@pytest.mark.parametrize("rationale", [
    pytest.param("nginx answers 502; [/] [conceal]x[/conceal] is just text", id="markup-is-text"),
    pytest.param("Größe überschritten, ошибка, 错误 👍 — é vs e\u0301", id="unicode-letters"),
    pytest.param("x" * 2000, id="longest"),
])
async def test_printable_rationales_are_kept_as_written(action_estate, rationale):
    async with Client(action_estate.server()) as client:
        proposed = await ok(client, "propose_pra_action", host=HOST, action="touch_file",
                            params={"file": action_estate.root.file("a")}, rationale=rationale)
    assert action_estate.store.get(proposed["proposal_id"]).rationale == rationale


@pytest.mark.anyio
@pytest.mark.parametrize("rationale", [pytest.param("too short", id="9-chars"),
                                       pytest.param("x" * 2001, id="2001-chars")])
async def test_a_rationale_keeps_its_length_limits(action_estate, rationale):
    async with Client(action_estate.server()) as client:
        text = await refused(client, "propose_pra_action", host=HOST, action="touch_file",
                             params={"file": action_estate.root.file("a")}, rationale=rationale)
    assert "rationale" in text and ("at least 10" in text or "at most 2000" in text), text


# -- the operator key: never opened, never named --------------------------------------------
_PROBE = textwrap.dedent("""
    import json, os, sys
    sys.path[:0] = {paths!r}
    opened = []

    def hook(event, args):
        if event in ("open", "sqlite3.connect") and args and isinstance(args[0], (str, os.PathLike)):
            opened.append(str(args[0]))
        elif event == "subprocess.Popen":
            opened.append(" ".join(map(str, args[1])))
    sys.addaudithook(hook)
    import anyio
    from mcp import Client
    from mcp_linux_infra.server.app import build_server
    from mcp_linux_infra.server.state import AppState
    from mcp_linux_infra.settings import Settings
    settings = Settings.model_validate_json(sys.argv[1])
    texts = []

    async def main():
        server = build_server(lambda: AppState.open(settings))
        async with Client(server) as client:
            tools = (await client.list_tools()).tools
            texts.extend(json.dumps(t.model_dump(mode="json")) for t in tools)
            for uri in ("linux-infra://hosts", "linux-infra://hosts/{host}/policy"):
                try:
                    texts.append(str(await client.read_resource(uri)))
                except Exception as exc:
                    texts.append(repr(exc))
            texts.append(str(await client.get_prompt("triage", {{"host": "{host}"}})))
            calls = [("list_hosts", {{}}), ("list_pra_actions", {{"host": "{host}"}}),
                     ("propose_pra_action", {{"host": "{host}", "action": "touch_file",
                      "params": {{"file": sys.argv[2]}}, "rationale": "probe the tools"}}),
                     ("list_proposals", {{}})]
            async def sent(name, args):
                result = await client.call_tool(name, args)
                texts.extend([result.content[0].text, json.dumps(result.structured_content)])
                return result.structured_content
            answers = {{name: await sent(name, args) for name, args in calls}}
            pid = answers["propose_pra_action"]["proposal_id"]
            for name in ("get_proposal", "execute_pra_action"):
                await sent(name, {{"proposal_id": pid}})
    anyio.run(main)
    print(json.dumps({{"opened": opened, "texts": texts, "modules": sorted(sys.modules)}}))
""")


def test_nothing_the_server_exposes_reads_or_names_the_operator_key(action_estate):
    key = action_estate.settings.operator_key
    code = _PROBE.format(paths=[str(REPO / "tests"), str(REPO / "src")], host=HOST)
    done = subprocess.run([sys.executable, "-c", code, action_estate.settings.model_dump_json(),
                           action_estate.root.file("a")], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert any(p.endswith("approvals.sqlite3") for p in seen["opened"])  # the hook works
    assert str(action_estate.settings.pra_key) in seen["opened"]
    assert not [p for p in seen["opened"] if p.startswith(str(key))]
    assert "mcp_linux_infra.approvals.signing" not in seen["modules"]
    assert "mcp_linux_infra.approvals.decide" not in seen["modules"]
    everything = "\n".join(seen["texts"])
    assert "not approved yet" in everything  # execute_pra_action was really called
    assert str(key) not in everything and key.name not in everything
    assert "operator_key" not in everything and "OPERATOR_KEY" not in everything
    server_code = REPO / "src/mcp_linux_infra/server"
    assert not [p for p in server_code.rglob("*.py") if "operator_key" in p.read_text()]


# -- over HTTP, the token's scopes decide who may propose and who may execute ---------------
@pytest.fixture
def http_url(action_estate, tmp_path):
    """`serve --transport http` with three tokens: read; read+propose; read+propose+execute."""
    tokens = {"reader": ["read"], "proposer": ["read", "propose"],
              "executor": ["read", "propose", "execute"]}
    specs = tokens_file(tmp_path / "tokens.json",
                        {n: (f"{n}-token", s) for n, s in tokens.items()})
    with serve_http(action_estate.env(**specs), tmp_path) as (_, port):
        yield f"http://127.0.0.1:{port}/mcp"


def _session(url: str, name: str):
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {name}-token"},
                              timeout=httpx2.Timeout(30, read=60))
    return http, Client(streamable_http_client(url, http_client=http))


@pytest.mark.anyio
async def test_http_scopes_gate_proposing_and_executing(action_estate, http_url):
    args = {"host": HOST, "action": "touch_file", "params": {"file": action_estate.root.file("a")},
            "rationale": "needed for the test"}
    http, client = _session(http_url, "reader")
    async with http, client:
        assert "lacks the 'propose' scope" in await refused(client, "propose_pra_action", **args)
    http, client = _session(http_url, "proposer")
    async with http, client:
        pid = (await ok(client, "propose_pra_action", **args))["proposal_id"]
        approve(action_estate.store, pid, 600, "alice", action_estate.settings.operator_key)
        assert "lacks the 'execute' scope" in await refused(client, "execute_pra_action",
                                                             proposal_id=pid)
    http, client = _session(http_url, "executor")
    async with http, client:
        done = await ok(client, "execute_pra_action", proposal_id=pid)
    assert done["state"] == "succeeded"
    history = action_estate.store.history(pid)
    assert history[0]["actor"] == "model:proposer"
    assert history[-1]["actor"] == "model:executor"
