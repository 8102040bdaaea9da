"""Hosts from the Ansible inventory the rollout uses, read without importing Ansible.

Importing ansible-core costs about 0.4 s and may print warnings; the server needs only
names, groups, addresses, ports and a few variables, so this reads the two static formats
itself, with Ansible's rules: INI (`[g]`, `[g:vars]`, `[g:children]`, host ranges
`web[01:20]`, `host:port`, literal values) and YAML (`all: {hosts, vars, children}`), plus
`group_vars/` and `host_vars/` beside the inventory. Variables merge in Ansible's order:
inventory-file group vars (by depth, then name), group_vars/all, other group_vars/, the
host's inventory vars, host_vars/. Jinja templates are not rendered.
Dynamic inventory scripts and plugins are not supported.
"""

import ast
import difflib
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mcp_linux_infra.errors import UserError

# Ansible's INVENTORY_IGNORE_EXTS and IGNORE_PATTERNS defaults, for inventory directories.
_IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst",
                     ".orig", ".cfg", ".retry")
_VARS_DIRS = ("group_vars", "host_vars")
_RANGE = re.compile(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::([0-9]+))?\]")
_KNOWN_HOSTS_OPT = re.compile(r"UserKnownHostsFile[= ]\s*(\S+)", re.IGNORECASE)


class InventoryError(UserError):
    """The inventory cannot be read; the message names the file and line."""


class UnknownTarget(UserError):
    """A host or group name that is not in the inventory."""


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    port: int
    groups: tuple[str, ...]
    vars: dict = field(compare=False, repr=False)

    @property
    def user(self) -> str | None:
        return self.vars.get("ansible_user")

    @property
    def known_hosts_files(self) -> tuple[Path, ...]:
        """UserKnownHostsFile paths named in the host's ssh arguments (the lab sets one)."""
        text = " ".join(str(self.vars.get(k, "")) for k in
                        ("ansible_ssh_common_args", "ansible_ssh_extra_args"))
        return tuple(Path(m.strip("'\"")).expanduser() for m in _KNOWN_HOSTS_OPT.findall(text))


@dataclass
class _Group:
    name: str
    hosts: set[str] = field(default_factory=set)
    children: set[str] = field(default_factory=set)
    vars: dict = field(default_factory=dict)
    dir_vars: dict = field(default_factory=dict)


class _Builder:
    """Accumulates groups and host vars from any number of sources, then resolves them."""

    def __init__(self) -> None:
        self.groups: dict[str, _Group] = {"all": _Group("all"), "ungrouped": _Group("ungrouped")}
        self.host_vars: dict[str, dict] = {}
        self.host_dir_vars: dict[str, dict] = {}

    def group(self, name: str) -> _Group:
        return self.groups.setdefault(name, _Group(name))

    def add_host(self, group: str, name: str, variables: dict) -> None:
        self.group(group).hosts.add(name)
        self.host_vars.setdefault(name, {}).update(variables)

    def _depths(self) -> dict[str, int]:
        depth = {"all": 0}
        frontier = ["all"]
        while frontier:
            nxt = []
            for name in frontier:
                for child in self.groups[name].children:
                    if depth.get(child, -1) < depth[name] + 1:
                        depth[child] = depth[name] + 1
                        nxt.append(child)
            frontier = nxt
            if max(depth.values()) > len(self.groups):
                raise InventoryError("inventory groups form a cycle (:children)")
        return depth

    def build(self) -> tuple[dict[str, Host], dict[str, tuple[str, ...]]]:
        for name in list(self.groups):
            if name != "all" and not any(name in g.children for g in self.groups.values()):
                self.groups["all"].children.add(name)
        depth = self._depths()
        members: dict[str, set[str]] = {}

        def hosts_of(name: str, seen: frozenset = frozenset()) -> set[str]:
            if name not in members:
                if name in seen:
                    raise InventoryError(f"inventory groups form a cycle through {name!r}")
                group = self.groups[name]
                found = set(group.hosts)
                for child in group.children:
                    found |= hosts_of(child, seen | {name})
                members[name] = found
            return members[name]

        all_hosts = set(self.host_vars)
        grouped = {h for n, g in self.groups.items() if n not in ("all", "ungrouped")
                   for h in hosts_of(n)}
        self.groups["ungrouped"].hosts |= all_hosts - grouped
        members.clear()
        hosts = {}
        order = sorted(self.groups, key=lambda n: (depth.get(n, 1), n))
        for name in sorted(all_hosts):
            mine = [g for g in order if name in hosts_of(g)]
            merged: dict = {}
            for g in mine:
                merged.update(self.groups[g].vars)
            for g in mine:
                merged.update(self.groups[g].dir_vars)
            merged.update(self.host_vars[name])
            merged.update(self.host_dir_vars.get(name, {}))
            port = merged.get("ansible_port", merged.get("ansible_ssh_port", 22))
            try:
                port = int(port)
            except (TypeError, ValueError):
                raise InventoryError(f"host {name}: ansible_port {port!r} is not a number")
            address = str(merged.get("ansible_host", merged.get("ansible_ssh_host", name)))
            hosts[name] = Host(name=name, address=address, port=port, vars=merged,
                               groups=tuple(g for g in sorted(mine) if g != "all"))
        groups = {n: tuple(sorted(hosts_of(n))) for n in self.groups}
        return hosts, groups


def _expand(pattern: str) -> list[str]:
    """`web[01:03].x` -> web01.x, web02.x, web03.x (numeric keeps the width; letters too)."""
    match = _RANGE.search(pattern)
    if not match:
        return [pattern]
    start, end, step = match.group(1), match.group(2), int(match.group(3) or 1)
    head, tail = pattern[:match.start()], pattern[match.end():]
    if start.isdigit() and end.isdigit():
        width = len(start) if start.startswith("0") else 0
        items = [str(i).zfill(width) for i in range(int(start), int(end) + 1, step)]
    elif len(start) == len(end) == 1 and start.isalpha() and end.isalpha():
        items = [chr(c) for c in range(ord(start), ord(end) + 1, step)]
    else:
        raise ValueError(f"bad host range [{start}:{end}]")
    return [name for item in items for name in _expand(head + item + tail)]


def _value(text: str):
    """Ansible's INI value rule: a Python literal if it parses as one, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _host_pattern(token: str) -> tuple[list[str], int | None]:
    """`name`, `name:port`, `[v6::addr]:port`: names (ranges expanded) and an optional port."""
    port = None
    outside = re.sub(r"\[[^\]]*\]", lambda m: "_" * len(m.group()), token)
    if outside.count(":") == 1:
        cut = outside.index(":")
        token, port = token[:cut], int(token[cut + 1:])
    return _expand(token.strip("[]") if token.count("[") == 1 and token.startswith("[")
                   and token.endswith("]") else token), port


def _read_ini(builder: _Builder, path: Path, text: str) -> None:
    section, kind = "ungrouped", "hosts"
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        where = f"{path}:{lineno}"
        try:
            if line.startswith("[") and line.endswith("]"):
                section, _, kind = line[1:-1].partition(":")
                kind = kind or "hosts"
                if kind not in ("hosts", "vars", "children"):
                    raise ValueError(f"unknown section type :{kind}")
                builder.group(section)
            elif kind == "hosts":
                tokens = shlex.split(line, comments=True)
                names, port = _host_pattern(tokens[0])
                variables = {}
                for token in tokens[1:]:
                    key, eq, value = token.partition("=")
                    if not eq:
                        raise ValueError(f"expected key=value, got {token!r}")
                    variables[key] = _value(value)
                if port is not None:
                    variables["ansible_port"] = port
                for name in names:
                    builder.add_host(section, name, variables)
            elif kind == "vars":
                key, eq, value = line.partition("=")
                if not eq:
                    raise ValueError(f"expected key=value, got {line!r}")
                builder.group(section).vars[key.strip()] = _value(value.strip())
            else:
                child = shlex.split(line, comments=True)[0]
                builder.group(child)
                builder.group(section).children.add(child)
        except (ValueError, IndexError) as exc:
            raise InventoryError(f"{where}: {exc}") from None


def _read_yaml_group(builder: _Builder, name: str, data, where: str) -> None:
    group = builder.group(name)
    if data is None:
        return
    if not isinstance(data, dict):
        raise InventoryError(f"{where}: group {name!r} must be a mapping")
    unknown = set(data) - {"hosts", "vars", "children"}
    if unknown:
        raise InventoryError(f"{where}: group {name!r} has unknown keys {sorted(unknown)}")
    for pattern, variables in (data.get("hosts") or {}).items():
        names, port = _host_pattern(str(pattern))
        variables = dict(variables or {})
        if port is not None:
            variables["ansible_port"] = port
        for host in names:
            builder.add_host(name, host, variables)
    group.vars.update(data.get("vars") or {})
    for child, child_data in (data.get("children") or {}).items():
        group.children.add(child)
        _read_yaml_group(builder, child, child_data, where)


def _read_yaml(builder: _Builder, path: Path, text: str) -> None:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InventoryError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise InventoryError(f"{path}: the top level must be a mapping of groups")
    for name, group in data.items():
        _read_yaml_group(builder, str(name), group, str(path))


def _vars_files(base: Path) -> Iterable[Path]:
    if base.is_dir():
        return sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [p for p in (base, base.with_suffix(".yml"), base.with_suffix(".yaml"),
                        base.with_suffix(".json")) if p.is_file()]


def _read_vars_dirs(builder: _Builder, directory: Path) -> None:
    for kind in _VARS_DIRS:
        root = directory / kind
        if not root.is_dir():
            continue
        names = builder.groups if kind == "group_vars" else builder.host_vars
        for name in list(names):
            for path in _vars_files(root / name):
                try:
                    data = yaml.safe_load(path.read_text()) or {}
                except yaml.YAMLError as exc:
                    raise InventoryError(f"{path}: {exc}") from None
                if not isinstance(data, dict):
                    raise InventoryError(f"{path}: expected a mapping of variables")
                if kind == "group_vars":
                    builder.groups[name].dir_vars.update(data)
                else:
                    builder.host_dir_vars.setdefault(name, {}).update(data)


def _read_file(builder: _Builder, path: Path) -> None:
    text = path.read_text()
    if path.suffix in (".yml", ".yaml", ".json"):
        _read_yaml(builder, path, text)
    else:
        _read_ini(builder, path, text)


def _source_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir()
                      if p.is_file() and not p.name.startswith(".")
                      and not p.name.endswith(_IGNORED_SUFFIXES))
    return [path]


class Inventory:
    """Hosts and groups; `resolve` turns a host or group name into hosts."""

    def __init__(self, hosts: dict[str, Host], groups: dict[str, tuple[str, ...]]):
        self.hosts = hosts
        self.groups = groups

    def resolve(self, target: str) -> list[Host]:
        if target in self.hosts:
            return [self.hosts[target]]
        if self.groups.get(target):
            return [self.hosts[n] for n in self.groups[target]]
        names = sorted(self.hosts) + sorted(g for g, m in self.groups.items() if m)
        close = difflib.get_close_matches(target, names, n=3, cutoff=0.5)
        hint = f"did you mean: {', '.join(close)}? " if close else ""
        raise UnknownTarget(f"{target!r} is neither a host nor a group in the inventory",
                            hint=f"{hint}list_hosts shows every host and its groups")

    def limited(self, groups: Iterable[str]) -> "Inventory":
        """Only the hosts of `groups`: a group without any of them is left empty, which
        `resolve` treats like a group that does not exist."""
        visible = {name for group in groups for name in self.groups.get(group, ())}
        return Inventory({n: h for n, h in self.hosts.items() if n in visible},
                         {g: tuple(n for n in members if n in visible)
                          for g, members in self.groups.items()})


def load_inventory(paths: Iterable[Path]) -> Inventory:
    """Read every inventory source; a missing source is an error only if no source exists."""
    builder = _Builder()
    paths = list(paths)
    existing = [p for p in paths if p.exists()]
    if paths and not existing:
        raise InventoryError(f"no inventory at {', '.join(map(str, paths))}",
                             hint="set LINUX_MCP_INVENTORY (or inventory in the config "
                                  "file), or start the lab: "
                                  "mcp-linux-infra lab up")
    directories = []
    for source in existing:
        for path in _source_files(source):
            _read_file(builder, path)
        directories.append(source if source.is_dir() else source.parent)
    for directory in dict.fromkeys(directories):
        _read_vars_dirs(builder, directory)
    return Inventory(*builder.build())
