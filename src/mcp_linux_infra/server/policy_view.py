"""A host's commands as its `mcp:policy` answer describes them (`_effective.commands`: each
command's rule, executable and forms, and its plugin, description, options with their value
types, and subcommands), for the catalog tools and for explaining refusals. The client reads
what the host says; it does not interpret the policy document's own schema (the one other
thing read here is the document's list of plugins, for their order and descriptions).

A wrapper older than this client describes each command by its forms only: then the forms
are what is shown, and the answer says the host's wrapper is older (`described`)."""

import difflib

from mcp_linux_infra.server.risk import analyze

OLDER_WRAPPER = ("this host's wrapper is older than this client: its policy answer lists each "
                 "command's forms, not its plugin, description and options; command_catalog "
                 "(mode=search) finds its commands by name and form")


def _effective(policy: dict) -> dict[str, dict]:
    return (policy.get("_effective") or {}).get("commands") or {}


def described(policy: dict) -> bool:
    """Whether the host's answer describes its commands (plugin, description, options and
    subcommands), as every wrapper of this client's version does."""
    return all("plugin" in command for command in _effective(policy).values())


def commands(policy: dict) -> dict[str, dict]:
    """name -> {name, plugin, description, options, subcommands, forms} of every command this
    host allows (plugin, description, options and subcommands empty from an older wrapper)."""
    return {name: {"name": name, "plugin": command.get("plugin"),
                   "description": command.get("description") or "",
                   "options": command.get("options") or [],
                   "subcommands": {sub: {"options": (spec or {}).get("options") or []}
                                   for sub, spec in (command.get("subcommands") or {}).items()},
                   "forms": command.get("forms") or []}
            for name, command in _effective(policy).items()}


def plugins(policy: dict) -> list[dict]:
    """{plugin, description, commands} of each plugin with a command this host allows, in
    the policy's order."""
    allowed = commands(policy)
    used = {c["plugin"] for c in allowed.values() if c["plugin"]}
    documented = policy.get("plugins") or {}
    names = [n for n in documented if n in used] + sorted(used - set(documented))
    return [{"plugin": name,
             "description": (documented.get(name) or {}).get("description", ""),
             "commands": sorted(c for c, data in allowed.items() if data["plugin"] == name)}
            for name in names]


def search(policy: dict, query: str) -> list[dict]:
    """Allowed commands whose name, description, options, subcommands or forms contain
    `query`."""
    needle = query.lower()
    hits = []
    for command in commands(policy).values():
        where = []
        if needle in command["name"].lower():
            where.append("name")
        if needle in command["description"].lower():
            where.append("description")
        options = [o["option"] for o in command["options"] if needle in o["option"].lower()]
        subs = [s for s in command["subcommands"] if needle in s.lower()]
        if options:
            where.append("options: " + ", ".join(options[:5]))
        if subs:
            where.append("subcommands: " + ", ".join(subs[:5]))
        if not command["plugin"]:  # an older wrapper: its forms are all it says
            forms = [f for f in command["forms"] if needle in f.lower()]
            if forms and "name" not in where:
                where.append("forms: " + ", ".join(forms[:5]))
        if where:
            hits.append({"command": command["name"], "plugin": command["plugin"],
                         "matched": "; ".join(where),
                         "description": command["description"][:160]})
    return hits


def similar(policy: dict, command: str, limit: int = 6) -> list[str]:
    """Allowed commands close to a refused one: the same binary's forms and options first,
    then names that look alike, then commands of the same category."""
    allowed = commands(policy)
    name = analyze(command)["binary"]
    if name in allowed:
        entry = allowed[name]
        forms = [f"{name} {sub}" for sub in entry["subcommands"]] or (
            [name] if entry["plugin"] else entry["forms"] or [name])
        options = [o["option"].split()[0] for o in entry["options"]]
        return [f"{f} [{' '.join(options[:12])}{' ...' if len(options) > 12 else ''}]"
                if options else f for f in forms][:limit]
    close = difflib.get_close_matches(name or "", list(allowed), n=3, cutoff=0.6)
    category = analyze(command)["category"]
    same = [n for n in sorted(allowed) if n not in close and analyze(n)["category"] == category
            and category is not None]
    return (close + same)[:limit]
