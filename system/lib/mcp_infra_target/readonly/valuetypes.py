"""Value types for option values and operands: each policy type compiles to a checker.

A checker takes the client's string and returns the string to pass on, or raises a
Refusal. Every type refuses the empty string. Types are parameterised by policy data
(ranges, enums, patterns); the kinds themselves are the fixed list in KINDS. Three kinds
judge what a value does rather than how it looks: `destination` (a host the policy lists,
destinations.py), `pattern` (a client's regular expression, bounded in what it may cost)
and `format` (a template naming only allow-listed fields; both in patterns.py).
"""

import re

from mcp_infra_target.core.refusal import Refusal
from mcp_infra_target.readonly.pathrules import ACCESS

# Compiled on first use (re caches them): a request needs at most the few its command uses.
_INT = r"-?[0-9]{1,18}"
_NUMBER = r"[0-9]{1,9}(\.[0-9]{1,6})?"
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?"


class PolicyError(Exception):
    """The policy document is malformed; the wrapper refuses everything until it is fixed."""


def _int(spec, where):
    low, high = spec.get("min"), spec.get("max")

    def check(value, rule):
        if not re.fullmatch(_INT, value):
            raise Refusal("bad_value", rule, f"{value!r} is not an integer")
        number = int(value)
        if (low is not None and number < low) or (high is not None and number > high):
            raise Refusal("bad_value", rule, f"{value} is outside {low}..{high}")
        return value
    return check


def _number(spec, where):
    low, high = spec.get("min"), spec.get("max")

    def check(value, rule):
        if not re.fullmatch(_NUMBER, value):
            raise Refusal("bad_value", rule, f"{value!r} is not a plain decimal number")
        number = float(value)
        if (low is not None and number < low) or (high is not None and number > high):
            raise Refusal("bad_value", rule, f"{value} is outside {low}..{high}")
        return value
    return check


def _enum(spec, where):
    """One of the listed values (an allow-list); `ignore_case` for binaries that compare
    without case (util-linux column names)."""
    values = frozenset(spec["values"])
    if not values or not all(isinstance(v, str) and v for v in values):
        raise PolicyError(f"{where}: values must be a non-empty list of strings")
    fold = _expect_bool(spec.get("ignore_case", False), where + ".ignore_case")
    folded = frozenset(v.upper() for v in values) if fold else values
    listed = ", ".join(sorted(values))
    if len(listed) > 1500:
        listed = listed[:1500].rsplit(", ", 1)[0] + f", ... ({len(values)} values; mcp:policy lists them)"

    def check(value, rule):
        if (value.upper() if fold and value.isascii() else value) not in folded:
            raise Refusal("bad_value", rule, f"{value[:200]!r} is not one of {listed}")
        return value
    return check


def _expect_bool(value, where):
    if not isinstance(value, bool):
        raise PolicyError(f"{where}: expected true or false")
    return value


def _list(spec, where, context):
    item = compile_type(spec["item"], where + ".item", context)
    separator = spec.get("separator", ",")
    max_items = spec.get("max_items", 32)

    def check(value, rule):
        parts = value.split(separator)
        if len(parts) > max_items:
            raise Refusal("bad_value", rule, "more than %d items" % max_items)
        return separator.join(item(part, rule) for part in parts)
    return check


def _regex(spec, where, context):
    """The policy's own validator: the whole value must match `pattern`; each named group
    in `groups` that took part in the match is also checked by its type (the value passed
    on is the client's, unchanged)."""
    try:
        pattern = re.compile(spec["pattern"])
    except re.error as error:
        raise PolicyError(f"{where}: bad pattern: {error}")
    max_len = spec.get("max_len", 256)
    shown = spec["pattern"] if len(spec["pattern"]) <= 80 else spec["pattern"][:77] + "..."
    groups = []
    for name, group_spec in _expect_dict(spec.get("groups", {}), where + ".groups").items():
        if name not in pattern.groupindex:
            raise PolicyError(f"{where}.groups: the pattern has no group {name!r}")
        groups.append((name, compile_type(group_spec, f"{where}.groups.{name}", context)))

    def check(value, rule):
        match = pattern.fullmatch(value) if len(value) <= max_len else None
        if match is None:
            raise Refusal("bad_value", rule, f"{value[:200]!r} does not match {shown}")
        for name, group_check in groups:
            if match.group(name) is not None:
                group_check(match.group(name), rule)
        return value
    return check


def _expect_dict(value, where):
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: expected a mapping")
    return value


def _text(spec, where):
    max_len = spec.get("max_len", 512)

    def check(value, rule):
        if not value or len(value) > max_len or not value.isprintable():
            raise Refusal("bad_value", rule, "text must be 1..%d printable characters" % max_len)
        return value
    return check


def _hostname(value, rule):
    if not re.fullmatch(_HOSTNAME, value):
        raise Refusal("bad_value", rule, f"{value!r} is not a host name")
    return value


def _ip(value, rule):
    import ipaddress  # here: only address types need it, and most requests have none
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise Refusal("bad_value", rule, f"{value!r} is not an IP address")
    if "%" in value:
        raise Refusal("bad_value", rule, f"{value!r}: scoped addresses are not accepted")
    return value


def _network(value, rule):
    import ipaddress
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise Refusal("bad_value", rule, f"{value!r} is not an address or prefix")
    return value


def _host(value, rule):
    try:
        return _ip(value, rule)
    except Refusal:
        return _hostname(value, rule)


def _path(spec, where, context):
    access = spec.get("access", "read")
    if access not in ACCESS:
        raise PolicyError("{}: access must be one of {}".format(where, ", ".join(ACCESS)))
    rules = context["paths"]

    def check(value, rule):
        return rules.check(value, access, rule)
    return check


def _destination(spec, where, context):
    from mcp_infra_target.readonly import (
        destinations,  # only commands that reach other hosts need it
    )
    return destinations.checker(context["network"]())


def _pattern(spec, where):
    from mcp_infra_target.readonly import patterns
    return patterns.pattern_checker(spec, where, PolicyError)


def _format(spec, where):
    from mcp_infra_target.readonly import patterns
    return patterns.format_checker(spec, where, PolicyError)


def _any_of(spec, where, context):
    members = [compile_type(s, "%s.any_of[%d]" % (where, i), context)
               for i, s in enumerate(spec["types"])]

    def check(value, rule):
        failures = []
        for member in members:
            try:
                return member(value, rule)
            except Refusal as refusal:
                failures.append(refusal)
        specific = [f for f in failures if f.reason != "bad_value"]
        raise (specific or failures)[0]
    return check


KINDS = {
    "int": (_int, ("min", "max")),
    "number": (_number, ("min", "max")),
    "enum": (_enum, ("values", "ignore_case")),
    "list": (_list, ("item", "separator", "max_items")),
    "regex": (_regex, ("pattern", "max_len", "groups")),
    "text": (_text, ("max_len",)),
    "hostname": (lambda spec, where: _hostname, ()),
    "ip": (lambda spec, where: _ip, ()),
    "network": (lambda spec, where: _network, ()),
    "host": (lambda spec, where: _host, ()),
    "path": (_path, ("access",)),
    "any_of": (_any_of, ("types",)),
    "destination": (_destination, ()),
    "pattern": (_pattern, ("syntax", "max_len", "max_nesting", "max_repeat_product",
                           "max_expansion")),
    "format": (_format, ("syntax", "fields", "max_len")),
}
_NEEDS_CONTEXT = {"list", "path", "any_of", "regex", "destination"}


def compile_type(spec: dict, where: str, context: dict):
    """Compile a type spec: a kind from KINDS or the name of a type in the policy's `types`."""
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise PolicyError(f"{where}: a type needs {{\"type\": ...}}")
    kind = spec["type"]
    named = context["named"]
    if kind not in KINDS:
        if kind not in named or len(spec) != 1:
            raise PolicyError(f"{where}: unknown type {kind!r}")
        return named[kind]
    builder, params = KINDS[kind]
    unknown = set(spec) - set(params) - {"type"}
    if unknown:
        raise PolicyError(f"{where}: unknown keys {sorted(unknown)} for type {kind}")
    if kind in _NEEDS_CONTEXT:
        return builder(spec, where, context)
    return builder(spec, where)
