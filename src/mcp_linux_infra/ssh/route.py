"""How to reach a host, as Ansible's `ssh` would: its address and port after the ssh config's
HostName and Port, and what carries the connection there: nothing (TCP), jump hosts
(ProxyJump, `-J`) or a command (ProxyCommand).

Sources, in OpenSSH's order (the first value wins): the inventory's
`ansible_ssh_common_args` / `ansible_ssh_extra_args` (the command line), then the OpenSSH
client config (settings.ssh_config, ~/.ssh/config by default). Only the options below are
honoured; any other option in the arguments is a note, which `hosts list` and doctor show,
never dropped in silence. No option weakens the strict host key check, which applies to
every hop against our known_hosts (StrictHostKeyChecking=no is one of the notes).

A ProxyCommand runs without a shell: its argv is split with shlex first and then each token
gets %h %p %r %n %% expanded, so no value can add an argument.
"""

import dataclasses
import re
import shlex
import threading
from dataclasses import dataclass
from pathlib import Path

import paramiko

from mcp_linux_infra.inventory import Host
from mcp_linux_infra.ssh.errors import RouteInvalid
from mcp_linux_infra.ssh.keyfile import signature

SSH_ARGS = ("ansible_ssh_common_args", "ansible_ssh_extra_args")
# ssh(1)'s options that take an argument (the others are flags).
_WITH_ARGUMENT = set("BbcDEeFIiJLlmOoPpQRSWw")
# -o options we use elsewhere as OpenSSH would: no note.
_HONOURED = {"proxyjump", "proxycommand", "userknownhostsfile"}
_TOKEN = re.compile(r"%(.)")
# An address a ProxyCommand may receive: a host name or an IP address, nothing a shell or
# shlex would read as more than one word.
_ADDRESS = re.compile(r"^[A-Za-z0-9._:%-]{1,253}$")
_JUMP = re.compile(r"^(?:ssh://)?(?:(?P<user>[^@/\s]+)@)?"
                   r"(?:\[(?P<v6>[0-9A-Fa-f:.%]+)\]|(?P<name>[^:@/\s\[\]]+))"
                   r"(?::(?P<port>\d{1,5}))?/?$")


@dataclass(frozen=True)
class Hop:
    """A jump host: who we log in as there, and its effective address (name: as written)."""

    user: str
    host: Host


@dataclass(frozen=True)
class Route:
    target: Host  # the inventory host at its effective address and port
    jumps: tuple[Hop, ...] = ()
    proxy_command: tuple[str, ...] | None = None
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.proxy_command is not None:
            return "ProxyCommand " + shlex.join(self.proxy_command)
        if self.jumps:
            return "via " + ", ".join(f"{j.user}@{j.host.address}:{j.host.port}"
                                      for j in self.jumps)
        return "direct"


def parse_args(text: str) -> tuple[dict[str, str], list[str]]:
    """ssh arguments -> ({proxyjump|proxycommand: value}, notes on what is not honoured).
    The first ProxyJump or ProxyCommand wins, as in OpenSSH."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cannot split the ssh arguments {text!r}: {exc}") from None
    found: dict[str, str] = {}
    notes: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith("-") or len(token) < 2:
            notes.append(f"{token!r} in the ssh arguments is not honoured")
            continue
        for pos, flag in enumerate(token[1:], 1):
            if flag not in _WITH_ARGUMENT:
                notes.append(f"-{flag} is not honoured")
                continue
            value = token[pos + 1:]
            if not value:
                if i >= len(tokens):
                    raise ValueError(f"-{flag} without its argument in {text!r}")
                value, i = tokens[i], i + 1
            if flag == "J":
                found.setdefault("proxy", "proxyjump")
                found.setdefault("proxyjump", value)
            elif flag == "o":
                _option(value, found, notes)
            else:
                notes.append(f"-{flag} {value} is not honoured")
            break
    return found, notes


def _option(text: str, found: dict[str, str], notes: list[str]) -> None:
    key, _, value = text.partition("=") if "=" in text.split(" ", 1)[0] else \
        text.partition(" ")
    key, value = key.strip().lower(), value.strip()
    if key in ("proxyjump", "proxycommand"):
        found.setdefault("proxy", key)
        found.setdefault(key, value)
    elif key == "stricthostkeychecking":
        if value.lower() != "yes":
            notes.append(f"StrictHostKeyChecking={value} is not honoured: every hop's host "
                         "key must be in known_hosts (hosts trust)")
    elif key not in _HONOURED:
        notes.append(f"-o {text} is not honoured")


def expand(argv: list[str], host: Host, alias: str, user: str) -> tuple[str, ...]:
    """%h %p %r %n %% in each token; any other %-token is refused."""
    values = {"h": host.address, "p": str(host.port), "r": user, "n": alias, "%": "%"}

    def one(match: re.Match) -> str:
        if match.group(1) not in values:
            raise RouteInvalid(host.name, f"ProxyCommand token %{match.group(1)} is not "
                               "supported (only %h %p %r %n %%)")
        return values[match.group(1)]
    return tuple(_TOKEN.sub(one, token) for token in argv)


class Routes:
    """Routes of inventory hosts; the ssh config is re-read when its file changes."""

    def __init__(self, ssh_config: Path | None):
        self.path = ssh_config
        self._lock = threading.Lock()
        self._config: tuple[object, paramiko.SSHConfig] | None = None

    def config(self) -> paramiko.SSHConfig:
        with self._lock:
            sig = signature(self.path) if self.path is not None else None
            if self._config is None or self._config[0] != sig:
                config = paramiko.SSHConfig()
                if sig is not None:
                    text = self.path.read_text()
                    if re.search(r"^\s*match\b.*\bexec\b", text, re.IGNORECASE | re.MULTILINE):
                        raise RouteInvalid("ssh config", f"{self.path} uses `Match exec`, "
                                           "which runs a command to match: not supported",
                                           hint="set LINUX_MCP_SSH_CONFIG to a file without "
                                                "it (or /dev/null)")
                    config.parse(text.splitlines())
                self._config = (sig, config)
            return self._config[1]

    def resolve(self, host: Host, user: str) -> Route:
        """The route to `host` for a login as `user` (for ProxyCommand's %r)."""
        found: dict[str, str] = {}
        notes: list[str] = []
        for name in SSH_ARGS:
            text = host.vars.get(name)
            if not text:
                continue
            try:
                args, more = parse_args(str(text))
            except ValueError as exc:
                raise RouteInvalid(host.name, f"{name}: {exc}") from None
            for key, value in args.items():
                found.setdefault(key, value)
            notes += [f"{name}: {note}" for note in more]
        entry = self.config().lookup(host.address)
        explicit_port = any(k in host.vars for k in ("ansible_port", "ansible_ssh_port"))
        port = host.port if explicit_port else int(entry.get("port", host.port))
        target = dataclasses.replace(host, address=entry.get("hostname", host.address),
                                     port=port)
        if "proxy" not in found:  # the command line named neither: the config may
            for key in ("proxyjump", "proxycommand"):
                if entry.get(key) is not None:
                    found.setdefault("proxy", key)
                    found[key] = entry[key]
        kind = found.get("proxy")
        value = found.get(kind or "", "none")
        if kind is None or value.lower() == "none":
            return Route(target, notes=tuple(notes))
        if not _ADDRESS.match(target.address):
            raise RouteInvalid(host.name, f"address {target.address!r} is not a host name or "
                               "IP address; refusing to use it in a proxy")
        if kind == "proxycommand":
            try:
                argv = shlex.split(value)
            except ValueError as exc:
                raise RouteInvalid(host.name, f"ProxyCommand {value!r}: {exc}") from None
            if not argv:
                raise RouteInvalid(host.name, "ProxyCommand is empty")
            return Route(target, proxy_command=expand(argv, target, host.address, user),
                         notes=tuple(notes))
        jumps = tuple(self._jump(host, spec.strip()) for spec in value.split(","))
        return Route(target, jumps=jumps, notes=tuple(notes))

    def _jump(self, host: Host, spec: str) -> Hop:
        match = _JUMP.match(spec)
        if not match or not 1 <= int(match.group("port") or 22) <= 65535:
            raise RouteInvalid(host.name, f"ProxyJump {spec!r} is not [user@]host[:port]")
        alias = match.group("v6") or match.group("name")
        entry = self.config().lookup(alias)
        if entry.get("proxyjump") or entry.get("proxycommand"):
            raise RouteInvalid(host.name, f"jump host {alias} has a ProxyJump or ProxyCommand "
                               "of its own in the ssh config: chains are written in one "
                               "ProxyJump (a,b), not followed through the config")
        user = match.group("user") or entry.get("user")
        if not user:
            raise RouteInvalid(host.name, f"jump host {alias}: no user (write user@{alias}, "
                               "or User in its ssh config entry)")
        port = int(match.group("port") or entry.get("port", 22))
        address = entry.get("hostname", alias)
        if not _ADDRESS.match(address):
            raise RouteInvalid(host.name, f"jump host address {address!r} is not a host name "
                               "or IP address")
        jump = Host(name=alias, address=address, port=port, groups=(),
                    vars={k: host.vars[k] for k in SSH_ARGS if k in host.vars})
        return Hop(user=user, host=jump)
