"""`serve --transport http` as a client meets it, over real HTTP with the SDK's client: no
OAuth advertised (a plain Bearer challenge, no metadata), tokens from the tokens file (a
revoke takes effect without a restart; when each was last used is kept), tools/list by the
token's scopes, tokens limited to inventory groups (another team's host is a host that does
not exist), TLS from a certificate and key, and the one URL printed at start."""

import datetime
import ipaddress
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp_support import ok, refused, tokens_file
from net_support import free_port, wait_listening
from paths_support import CLI

from mcp_linux_infra.approvals.store import open_approvals
from mcp_linux_infra.audit import Audit
from mcp_linux_infra.errors import EXIT_CONFIG, EXIT_SYSTEM
from mcp_linux_infra.server.learning import LearningStore
from mcp_linux_infra.tokens import (
    LAST_USED,
    read_last_used,
    read_tokens,
    revoke_token,
    token_hash,
)

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "t", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream"}
ACTIONS = {"propose_pra_action", "execute_pra_action"}


@contextmanager
def serving(env: dict[str, str], cwd: Path, tls: bool = False) -> Iterator[tuple[str, str]]:
    """The server, once it listens: (the line it printed first, its base URL)."""
    port = free_port()
    proc = subprocess.Popen([CLI, "serve", "--transport", "http", "--port", str(port)],
                            env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
        wait_listening(proc, "127.0.0.1", port)
        yield first, f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()


def session(url: str, token: str | None, verify=True):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, verify=verify,
                              timeout=httpx2.Timeout(30, read=60))
    return http, Client(streamable_http_client(url, http_client=http))


async def tool_names(url: str, token: str | None, verify=True) -> set[str]:
    http, client = session(url, token, verify)
    async with http, client:
        return {t.name for t in (await client.list_tools()).tools}


def two_teams(estate_root: Path) -> None:
    """web-01 in group web, web-02 moved to group db (the estate's own SSH servers)."""
    inventory = estate_root / "inventory.ini"
    lines = inventory.read_text().splitlines()
    web, db = lines[1], lines[2].replace("web-02", "db-01", 1)
    inventory.write_text(f"[web]\n{web}\n[db]\n{db}\n")
    known = estate_root / "known_hosts"
    known.write_text(known.read_text().replace("web-02", "db-01"))


@pytest.mark.anyio
async def test_no_oauth_is_advertised(estate, tmp_path):
    e = estate()
    env = e.env(**tokens_file(tmp_path / "tokens.json", {"r": ("r-token", ["read"])}))
    with serving(env, tmp_path) as (_, base):
        async with httpx2.AsyncClient() as raw:
            none = await raw.post(f"{base}/mcp", json=INITIALIZE, headers=ACCEPT)
            assert none.status_code == 401
            challenge = none.headers["www-authenticate"]
            assert challenge.startswith("Bearer") and "resource_metadata" not in challenge
            assert "auth.invalid" not in challenge + none.text
            for path in ("/.well-known/oauth-protected-resource",
                         "/.well-known/oauth-protected-resource/mcp",
                         "/.well-known/oauth-authorization-server"):
                assert (await raw.get(base + path)).status_code == 404, path
        with pytest.raises(Exception):  # noqa: B017 - the SDK's client: no token, no session
            await tool_names(f"{base}/mcp", None)
        assert "list_hosts" in await tool_names(f"{base}/mcp", "r-token")


@pytest.mark.anyio
async def test_tools_list_follows_the_scopes(estate, tmp_path):
    e = estate()
    env = e.env(**tokens_file(tmp_path / "tokens.json", {
        "reader": ("reader-token", ["read"]), "proposer": ("proposer-token", ["read", "propose"]),
        "executor": ("executor-token", ["read", "propose", "execute"])}))
    with serving(env, tmp_path) as (_, base):
        url = f"{base}/mcp"
        everything = await tool_names(url, "executor-token")
        assert ACTIONS <= everything
        assert await tool_names(url, "reader-token") == everything - ACTIONS
        assert await tool_names(url, "proposer-token") == everything - {"execute_pra_action"}
        http, client = session(url, "reader-token")
        async with http, client:  # hidden, and refused by the same declaration
            text = await refused(client, "execute_pra_action", proposal_id="p00000000")
    assert "lacks the 'execute' scope" in text


@pytest.mark.anyio
async def test_a_revoke_takes_effect_without_a_restart(estate, tmp_path):
    e = estate()
    path = tmp_path / "tokens.json"
    env = e.env(**tokens_file(path, {"a": ("a-token", ["read"]), "b": ("b-token", ["read"])}))
    with serving(env, tmp_path) as (first, base):
        url = f"{base}/mcp"
        assert await tool_names(url, "a-token")
        done = await anyio.run_process([CLI, "tokens", "revoke", "a"], env=env, cwd=tmp_path,
                                       check=False)
        assert done.returncode == 0, done.stderr
        with pytest.raises(Exception):  # noqa: B017 - 401 now
            await tool_names(url, "a-token")
        async with httpx2.AsyncClient() as raw:
            gone = await raw.post(url, json=INITIALIZE,
                                  headers={**ACCEPT, "Authorization": "Bearer a-token"})
            assert gone.status_code == 401
        assert await tool_names(url, "b-token")
        tokens_file(path, {"c": ("c-token", ["read"])})  # a new one works at once, too
        assert await tool_names(url, "c-token")
        revoke_token(path, "b")
        revoke_token(path, "c")
        async with httpx2.AsyncClient() as raw:  # the last one revoked: nobody, not everybody
            empty = await raw.post(url, json=INITIALIZE, headers=ACCEPT)
            assert empty.status_code == 401
    assert f"serving {url} (bearer tokens of {path})" in first
    used = read_last_used(e.settings.state_dir / LAST_USED)  # written on the way out
    assert read_tokens(path) == []
    assert set(used) == {token_hash(f"{n}-token") for n in "abc"} and all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:]{8}\+00:00", v)
                                  for v in used.values())


@pytest.mark.anyio
async def test_a_team_token_sees_and_touches_only_its_hosts(estate, tmp_path):
    e = estate()
    two_teams(e.settings.inventory[0].parent)
    every = ["read", "propose", "execute"]
    env = e.env(**tokens_file(tmp_path / "tokens.json", {
        "web-team": ("web-token", every, ["web"]), "db-team": ("db-token", every, ["db"])}))
    store = open_approvals(e.settings, Audit(tmp_path / "audit.jsonl"))
    theirs = store.create("db-01", "restart_service", {"unit": "nginx"}, "the db is down",
                          600).id
    store.close()
    learning = LearningStore(e.settings.state_dir / "learning.sqlite3")
    learning.record("db-01", "nc -z x 1", "nc", "unknown_command", None, "", None, at=1.0)
    learning.close()
    with serving(env, tmp_path) as (_, base):
        url = f"{base}/mcp"
        http, client = session(url, "web-token")
        async with http, client:
            hosts = await ok(client, "list_hosts", format="json")
            assert [h["name"] for h in hosts["hosts"]] == ["web-01"]
            assert hosts["groups"] == {"web": 1}
            resource = await client.read_resource("linux-infra://hosts")
            assert [h["name"] for h in json.loads(resource.contents[0].text)] == ["web-01"]
            seen = [await refused(client, "diagnose_system", host=name)
                    for name in ("db-01", "db-02", "db")]
            policies = []
            for name in ("db-01", "db-02"):
                with pytest.raises(MCPError) as failed:
                    await client.read_resource(f"linux-infra://hosts/{name}/policy")
                policies.append(failed.value.error.message.replace(name, "NAME"))
            assert policies[0] == policies[1]
            other = [await refused(client, "get_proposal", proposal_id=pid)
                     for pid in (theirs, "p00000000")]
            other.append(await refused(client, "execute_pra_action", proposal_id=theirs))
            listed = await ok(client, "list_proposals", format="json")
            learned = [await ok(client, "command_catalog", mode="refusals"),
                       await ok(client, "command_catalog", mode="suggestions", min_count=1,
                                min_age_hours=0)]
        assert listed["count"] == 0
        assert learned[0]["refusals"] == 0 and "db-01" not in json.dumps(learned)
        for text, name in zip(seen, ("db-01", "db-02", "db")):
            assert f"{name!r} is neither a host nor a group" in text and "db-01" not in \
                text.replace(f"{name!r}", "")
        assert _shape(seen[0], "db-01") == _shape(seen[1], "db-02")
        assert _shape(other[0], theirs) == _shape(other[1], "p00000000")
        assert _shape(other[2], theirs) == _shape(other[1], "p00000000").replace(
            "get_proposal", "execute_pra_action")
        http, client = session(url, "db-token")
        async with http, client:
            mine = await ok(client, "get_proposal", proposal_id=theirs)
            hosts = await ok(client, "list_hosts", format="json")
            assert (await ok(client, "command_catalog", mode="refusals"))["by_host"] == {
                "db-01": 1}
        assert mine["host"] == "db-01" and [h["name"] for h in hosts["hosts"]] == ["db-01"]


def _shape(text: str, name: str) -> str:
    """An answer with the name asked for and the trace id taken out."""
    return re.sub(r"trace [0-9a-f]+", "trace T", text.replace(name, "NAME"))


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.anyio
async def test_tls_from_a_certificate_and_key(estate, tmp_path):
    import ssl

    e = estate()
    cert, key = _self_signed(tmp_path)
    env = e.env(LINUX_MCP_HTTP_TLS_CERT=str(cert), LINUX_MCP_HTTP_TLS_KEY=str(key),
                **tokens_file(tmp_path / "tokens.json", {"r": ("r-token", ["read"])}))
    with serving(env, tmp_path, tls=True) as (first, base):
        assert f"serving {base}/mcp " in first and base.startswith("https://")
        trust = ssl.create_default_context(cafile=str(cert))
        assert "list_hosts" in await tool_names(f"{base}/mcp", "r-token", verify=trust)
        with pytest.raises(Exception):  # noqa: B017 - a client that does not trust it
            await tool_names(f"{base}/mcp", "r-token")


@pytest.mark.parametrize(("files", "code"), [("missing", EXIT_SYSTEM), ("garbage", EXIT_CONFIG),
                                             ("swapped", EXIT_CONFIG)])
def test_a_bad_certificate_is_one_line(estate, tmp_path, files, code):
    cert, key = _self_signed(tmp_path)
    if files == "missing":
        cert = tmp_path / "nope.pem"
    elif files == "garbage":
        cert.write_text("not a certificate\n")
    else:
        cert, key = key, cert
    env = estate().env(LINUX_MCP_HTTP_TLS_CERT=str(cert), LINUX_MCP_HTTP_TLS_KEY=str(key))
    done = subprocess.run([CLI, "serve", "--transport", "http", "--port", str(free_port())],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == code, done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert str(cert) in done.stderr


def test_the_url_is_printed_at_start_without_tokens(estate, tmp_path):
    env = estate().env(LINUX_MCP_TOKENS_FILE=str(tmp_path / "none.json"))
    with serving(env, tmp_path) as (first, base):
        assert first.startswith(f"mcp-linux-infra: serving {base}/mcp (WITHOUT auth")


INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


def _inspector(url: str, home: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home), "MCP_CATALOG_PATH": str(home / "mcp.json"),
           "npm_config_cache": os.path.expanduser("~/.npm")}
    return subprocess.run(["npx", "-y", INSPECTOR, "--cli", url, "--method", "tools/list",
                           *extra], env=env, cwd=home, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, check=False)


@pytest.mark.skipif(shutil.which("npx") is None, reason="the MCP Inspector needs node and npx")
def test_the_mcp_inspector_cli_with_and_without_a_token(estate, tmp_path):
    env = estate().env(**tokens_file(tmp_path / "tokens.json", {"r": ("r-token", ["read"])}))
    home = tmp_path / "inspector"
    home.mkdir()
    with serving(env, tmp_path) as (_, base):
        url = f"{base}/mcp"
        listed = _inspector(url, home, "--header", "Authorization: Bearer r-token")
        assert listed.returncode == 0, listed.stderr[-2000:]
        names = {t["name"] for t in json.loads(listed.stdout)["tools"]}
        assert "list_hosts" in names and not names & ACTIONS
        refused = _inspector(url, home, "--stored-auth-only")
    assert refused.returncode != 0  # asks for a token; no login against nothing
    assert "auth_required" in refused.stderr and "invalid_token" in refused.stderr
    assert "auth.invalid" not in refused.stdout + refused.stderr
