"""A whole fake estate for the MCP server's tests, with nothing fake on the protocol path.

Each host is a real SSH server in-process (ssh_support.FakeSSHD) that hands every request
to the real system/bin/mcp-wrapper with the real default policy, except that each
command's executable is a stand-in printing the output captured from a real lab target
(tests/data/target_outputs.json, keyed by the argv the wrapper would execute). So every
command a tool sends must pass the real policy, and parsers see real output. `call`, `ok`,
`data` and `refused` make tool calls through any MCP client (in-process, over stdio or
HTTP); `settings_env` and `serve_http` run `mcp-linux-infra serve` as a real process.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from net_support import free_port, wait_listening
from paths_support import CLI
from ssh_support import FakeSSHD, known_hosts_line, new_key, wrapper_handler
from wrapper_support import default_policy_document, make_root, remove_root

from mcp_linux_infra.audit import Audit
from mcp_linux_infra.server.app import build_server
from mcp_linux_infra.server.state import AppState
from mcp_linux_infra.settings import Settings
from mcp_linux_infra.tokens import add_token

OUTPUTS = Path(__file__).parent / "data" / "target_outputs.json"

MISS = "[stand-in] no captured output for: "
_STAND_IN = """#!{python} -I
# Prints the captured output for this argv; a missing entry is reported, never invented.
# A checked path handed over as /dev/fd/N[/...] is named by the path the kernel gives N.
import json, os, re, sys, time
def named(word):
    found = re.fullmatch(r"/dev/fd/([0-9]+)(/.*)?", word)
    if not found:
        return word
    real = os.readlink("/proc/self/fd/" + found.group(1))
    rest = found.group(2) or ""
    return real if rest in ("", "/.") else real.rstrip("/") + rest
key = " ".join([os.path.basename(sys.argv[0])] + [named(word) for word in sys.argv[1:]])
outputs = json.load(open(os.environ["FAKE_OUTPUTS"]))
answer = outputs.get(key)
if answer is None:
    sys.stderr.write("%s" + key + "\\n")
    sys.exit(97)""" % MISS + """
time.sleep(answer.get("sleep", 0))
sys.stdout.write(answer.get("stdout", "") * answer.get("repeat", 1))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("exit", 0))
"""


def fake_root(work: Path, extra_outputs: dict | None = None,
              policy_defaults: dict | None = None, tier=None) -> Path:
    """A wrapper test root whose executables are stand-ins (of the current target tier, or
    of `tier`: previous_support.PreviousTier)."""
    outputs = json.loads(OUTPUTS.read_text())["outputs"]
    outputs.update(extra_outputs or {})
    work.mkdir(parents=True, exist_ok=True)
    (work / "outputs.json").write_text(json.dumps(outputs))
    bindir = work / "bin"
    bindir.mkdir()
    script = bindir / ".stand-in"
    script.write_text(_STAND_IN.format(python=sys.executable))
    script.chmod(0o755)
    document = tier.policy() if tier else default_policy_document()
    for plugin in document["plugins"].values():
        for name, spec in plugin["commands"].items():
            (bindir / name).symlink_to(script)
            spec["executable"] = [str(bindir / name)]
    document["environment"]["FAKE_OUTPUTS"] = str(work / "outputs.json")
    document["defaults"].update(policy_defaults or {})
    for path in (work, bindir):
        path.chmod(0o755)
    return tier.make_root(document, work / "root") if tier else make_root(document)


def audit_into(path: Path, lines: list[str]) -> Audit:
    """An Audit writing to `path` whose stream, instead of stderr, appends to `lines`."""
    class Lines:
        def write(self, text):
            lines.extend(t for t in text.splitlines() if t)

        def flush(self):
            pass
    return Audit(path, Lines())


@dataclass
class Estate:
    settings: Settings
    hosts: dict[str, FakeSSHD]
    root: Path
    misses: list[str]
    audit_lines: list[str]

    def open_state(self) -> AppState:
        return AppState.open(self.settings, audit=audit_into(self.settings.audit_log,
                                                             self.audit_lines))

    def server(self):
        return build_server(self.open_state)

    def audit(self) -> list[dict]:
        return [json.loads(line) for line in self.audit_lines]

    def env(self, **extra: str) -> dict[str, str]:
        return settings_env(self.settings, **extra)

    def close(self) -> None:
        for sshd in self.hosts.values():
            sshd.stop()
        remove_root(self.root)


def make_estate(tmp_path: Path, names: list[str], extra_outputs: dict | None = None,
                policy_defaults: dict | None = None, group: str = "web", tier=None,
                **settings) -> Estate:
    """Hosts `names` (in `group`) whose read tier is the current one, or `tier`'s."""
    root = fake_root(tmp_path / "target", extra_outputs, policy_defaults, tier)
    reader = new_key(tmp_path / "reader.key")
    new_key(tmp_path / "pra.key")
    misses: list[str] = []
    real = tier.handler(root) if tier else wrapper_handler(root)

    def handler(command: str, stdin: bytes):
        code, out, err = real(command, stdin)
        for text in (out.decode(), err.decode(), out.decode("unicode_escape", "replace")):
            misses.extend(line.split(MISS, 1)[1].split("\\n")[0] for line in
                          text.splitlines() if MISS in line)
        return code, out, err
    hosts = {name: FakeSSHD(handler, [reader]) for name in names}
    lines = [f"[{group}]"] + [f"{n} ansible_host=127.0.0.1 ansible_port={s.port}"
                              for n, s in hosts.items()]
    (tmp_path / "inventory.ini").write_text("\n".join(lines) + "\n")
    known = "".join(known_hosts_line(s.host(n), s.host_key) for n, s in hosts.items())
    (tmp_path / "known_hosts").write_text(known)
    os.chmod(tmp_path / "known_hosts", 0o600)
    config = dict(_env_file=None, inventory=[tmp_path / "inventory.ini"],
                  known_hosts=tmp_path / "known_hosts", reader_key=tmp_path / "reader.key",
                  pra_key=tmp_path / "pra.key", state_dir=tmp_path / "state",
                  tokens_file=tmp_path / "tokens.json",  # absent: no tokens
                  audit_log=tmp_path / "state" / "audit.jsonl", connect_timeout=2,
                  command_timeout=20, keepalive_interval=0,
                  reader_sessions=0)  # a channel per request: the fake sees each one
    config.update(settings)
    return Estate(Settings(**config), hosts, root, misses, [])


def tokens_file(path: Path, tokens: dict[str, tuple]) -> dict[str, str]:
    """A tokens file at `path` as `tokens new` writes it, of {name: (token, scopes) or
    (token, scopes, groups)}; the setting that names it."""
    for name, (token, scopes, *groups) in tokens.items():
        add_token(path, name, scopes, groups[0] if groups else None, token)
    return {"LINUX_MCP_TOKENS_FILE": str(path)}


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """This process's environment, but for LINUX_MCP_*: what gives a CLI process these
    settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINUX_MCP_")}
    s = settings
    env.update({"LINUX_MCP_INVENTORY": str(s.inventory[0]),
                "LINUX_MCP_KNOWN_HOSTS": str(s.known_hosts),
                "LINUX_MCP_READER_KEY": str(s.reader_key), "LINUX_MCP_PRA_KEY": str(s.pra_key),
                "LINUX_MCP_OPERATOR_KEY": str(s.operator_key),
                "LINUX_MCP_APPROVER": s.approver, "LINUX_MCP_STATE_DIR": str(s.state_dir),
                "LINUX_MCP_AUDIT_LOG": str(s.audit_log), "LINUX_MCP_CONNECT_TIMEOUT": "2",
                "LINUX_MCP_TOKENS_FILE": str(s.tokens_file)})
    env.update(extra)
    return env


@contextmanager
def serve_http(env: dict[str, str], cwd: Path, bind: str = "127.0.0.1",
               port: int | None = None) -> Iterator[tuple[str, int]]:
    """`mcp-linux-infra serve --transport http` on bind:port (a free port by default), as
    soon as it listens: (the address it answers on, the port); stopped on the way out."""
    port = port or free_port()
    proc = subprocess.Popen([CLI, "serve", "--transport", "http", "--host", bind, "--port",
                             str(port)], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    address = "127.0.0.1" if bind == "0.0.0.0" else bind
    try:
        wait_listening(proc, address, port)
        yield address, port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()


# Tool calls through a real MCP client, for tests of what the model sees.
async def call(client, tool, **args):
    """(is_error, structured content, the first text) of a tool call."""
    result = await client.call_tool(tool, args)
    return result.is_error, result.structured_content, (
        result.content[0].text if result.content else "")


async def ok(client, tool, **args):
    failed, data, text = await call(client, tool, **args)
    assert not failed, text
    return data


async def data(client, tool, **args):
    """A tool's structured result (format=json: sent once, the text only a summary of it)."""
    failed, content, text = await call(client, tool, format="json", **args)
    assert not failed, text
    assert isinstance(content, dict) and text and text != json.dumps(content)
    return content


async def refused(client, tool, **args):
    failed, _, text = await call(client, tool, **args)
    assert failed, f"{tool} should have been refused: {text[:300]}"
    return text
