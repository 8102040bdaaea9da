"""The compiled policy in words, for `mcp:policy`'s `_effective.commands`: what each command
offers (options with a human description of their values, subcommands, forms), so the MCP
server shows a host's catalog without knowing the policy's schema.

Each value is described from the type the policy gives it, named types by their name:
`one of a|b|c`, `int 1..100`, `path (read)`, `destination`, `unit`, ...
"""
from __future__ import annotations

SHOWN_PATTERN_CHARS = 80


def value_text(spec: dict | None) -> str | None:
    """A human description of a value type spec; None for an option without a value."""
    if spec is None:
        return None
    kind = spec.get("type")
    if kind == "enum":
        return "one of " + "|".join(spec["values"])
    if kind in ("int", "number"):
        low, high = spec.get("min"), spec.get("max")
        low = "" if low is None else low
        high = "" if high is None else high
        return f"{kind} {low}..{high}"
    if kind == "path":
        return f"path ({spec.get('access', 'read')})"
    if kind == "list":
        separator = spec.get("separator", ",")
        return f"list of {value_text(spec['item'])} separated by {separator!r}"
    if kind == "regex":
        pattern = spec["pattern"]
        if len(pattern) > SHOWN_PATTERN_CHARS:
            pattern = pattern[:SHOWN_PATTERN_CHARS - 3] + "..."
        return f"text matching {pattern}"
    if kind == "text":
        return "text of at most %d characters" % spec.get("max_len", 512)
    if kind == "any_of":
        return " or ".join(value_text(member) for member in spec["types"])
    if kind == "pattern":
        return f"pattern ({spec.get('syntax', 'regex')})"
    if kind == "format":
        return f"{spec.get('syntax', '')} template of listed fields"
    return kind  # hostname, ip, network, host, destination, or a named type by its name


def _options(node) -> list[dict]:
    return [{"option": " ".join(option.spellings), "value": value_text(option.type_spec)}
            for option in node.option_list]


def _subcommands(node) -> dict[str, dict]:
    out = {}
    for child in node.children:
        entry = {"description": child.description, "options": _options(child)}
        if child.children:
            entry["subcommands"] = _subcommands(child)
        out[child.name] = entry
    return out


def command(command) -> dict:
    """One compiled command as `_effective.commands[NAME]` shows it."""
    return {"rule": command.rule, "executable": command.executable(),
            "forms": [form.rule for form in command.forms()], "plugin": command.plugin,
            "description": command.description, "options": _options(command),
            "subcommands": _subcommands(command)}
