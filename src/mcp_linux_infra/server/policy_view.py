"""Reading a host's effective policy (the `mcp:policy` answer) for the catalog tools and for
explaining refusals: which commands, options and forms this host allows."""

import difflib

from mcp_linux_infra.server.risk import analyze


def _value_type(spec) -> str | None:
    if spec is None:
        return None
    if isinstance(spec, dict):
        kind = spec.get("type", "value")
        if kind == "enum":
            return "one of " + "|".join(map(str, spec.get("values", [])))
        if kind == "int":
            return f"int {spec.get('min', '')}..{spec.get('max', '')}"
        return kind
    return str(spec)


def _options(spec: dict) -> list[dict]:
    return [{"option": spellings, "value": _value_type(value)}
            for spellings, value in (spec.get("options") or {}).items()]


def commands(policy: dict) -> dict[str, dict]:
    """name -> {plugin, description, options, subcommands, forms} of every allowed command."""
    effective = (policy.get("_effective") or {}).get("commands") or {}
    found = {}
    for plugin, data in (policy.get("plugins") or {}).items():
        for name, spec in (data.get("commands") or {}).items():
            if effective and name not in effective:
                continue  # not installed on this host, or disabled
            subcommands = spec.get("subcommands") or {}
            found[name] = {
                "name": name, "plugin": plugin, "description": spec.get("description", ""),
                "options": _options(spec),
                "subcommands": {sub: {"options": _options(s or {})}
                                for sub, s in subcommands.items()},
                "forms": (effective.get(name) or {}).get("forms", []),
            }
    return found


def plugins(policy: dict) -> list[dict]:
    allowed = commands(policy)
    return [{"plugin": name, "description": data.get("description", ""),
             "commands": sorted(c for c in (data.get("commands") or {}) if c in allowed)}
            for name, data in (policy.get("plugins") or {}).items()]


def similar(policy: dict, command: str, limit: int = 6) -> list[str]:
    """Allowed commands close to a refused one: the same binary's forms and options first,
    then names that look alike, then commands of the same category."""
    allowed = commands(policy)
    name = analyze(command)["binary"]
    if name in allowed:
        entry = allowed[name]
        forms = [f"{name} {sub}" for sub in entry["subcommands"]] or [name]
        options = [o["option"].split()[0] for o in entry["options"]]
        return [f"{f} [{' '.join(options[:12])}{' ...' if len(options) > 12 else ''}]"
                if options else f for f in forms][:limit]
    close = difflib.get_close_matches(name or "", list(allowed), n=3, cutoff=0.6)
    category = analyze(command)["category"]
    same = [n for n in sorted(allowed) if n not in close and analyze(n)["category"] == category
            and category is not None]
    return (close + same)[:limit]


def search(policy: dict, query: str) -> list[dict]:
    """Allowed commands whose name, description, options or subcommands contain `query`."""
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
        if where:
            hits.append({"command": command["name"], "plugin": command["plugin"],
                         "matched": "; ".join(where),
                         "description": command["description"][:160]})
    return hits
