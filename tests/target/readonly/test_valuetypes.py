"""Every value type of the policy language, its parameters, and spec errors."""

import pytest
from mcp_infra_target.core.refusal import Refusal
from mcp_infra_target.readonly.pathrules import PathRules
from mcp_infra_target.readonly.valuetypes import PolicyError, compile_type

RULES = PathRules(["/etc"], ["/"], ["/etc/shadow"], ["*.key"])


def checker(spec, named=None):
    return compile_type(spec, "test", {"paths": RULES, "named": named or {}})


def accepts(spec, value, named=None):
    try:
        return checker(spec, named)(value, "test/rule") is not None
    except Refusal:
        return False


CASES = [
    ({"type": "int", "min": 1, "max": 10}, ["1", "10", "007"], ["0", "11", "-1", "1.0", "", " 1", "1e3", "+1", "0x1"]),
    ({"type": "int", "min": -5, "max": 5}, ["-5", "0"], ["-6", "--1"]),
    ({"type": "number", "min": 0.2, "max": 5}, ["0.2", "1", "4.5"], ["0.1", "5.5", "-1", ".5", "1e1", "nan", "inf"]),
    ({"type": "enum", "values": ["a", "b"]}, ["a", "b"], ["c", "", "A", "a "]),
    ({"type": "list", "item": {"type": "int", "min": 1, "max": 9}, "max_items": 2}, ["1", "1,2"], ["1,2,3", "1,", ",", "", "a"]),
    ({"type": "regex", "pattern": "[a-z]{1,3}"}, ["abc"], ["abcd", "", "ab\n", "ABC"]),
    ({"type": "text", "max_len": 5}, ["a b", "-x", "$(x)"], ["", "123456", "a\tb"]),
    ({"type": "hostname"}, ["example.com", "a", "_dmarc.x.org", "x.org.", "1.2.3.4"],
     ["-x", "a..b", "a b", "a/b", "", "x" * 254, "ex@mple.com", "é.com"]),
    ({"type": "ip"}, ["127.0.0.1", "::1", "fe80::1"], ["256.1.1.1", "localhost", "fe80::1%eth0", "", "1.2.3"]),
    ({"type": "network"}, ["10.0.0.0/8", "10.0.0.1", "::/0"], ["10.0.0.0/33", "x", ""]),
    ({"type": "host"}, ["10.0.0.1", "db.internal"], ["-p", "a b", ""]),
    ({"type": "any_of", "types": [{"type": "int", "min": 1, "max": 3}, {"type": "enum", "values": ["x"]}]}, ["2", "x"], ["4", "y", ""]),
]


@pytest.mark.parametrize("spec, good, bad", CASES, ids=[c[0]["type"] for c in CASES])
def test_type_accepts_and_refuses(spec, good, bad):
    for value in good:
        assert accepts(spec, value), value
    for value in bad:
        assert not accepts(spec, value), value


def test_refusal_names_the_rule_and_reason():
    with pytest.raises(Refusal) as caught:
        checker({"type": "int", "min": 1, "max": 2})("9", "plugin/cmd")
    assert (caught.value.reason, caught.value.rule) == ("bad_value", "plugin/cmd")


def test_path_type_reports_the_path_reason():
    with pytest.raises(Refusal) as caught:
        checker({"type": "path", "access": "read"})("/etc/shadow", "r")
    assert caught.value.reason == "path_denied"
    any_of = {"type": "any_of", "types": [{"type": "int"}, {"type": "path", "access": "read"}]}
    with pytest.raises(Refusal) as caught:
        checker(any_of)("/etc/shadow", "r")
    assert caught.value.reason == "path_denied"


def test_named_types_are_references():
    named = {"small": checker({"type": "int", "min": 0, "max": 3})}
    assert accepts({"type": "small"}, "3", named)
    assert not accepts({"type": "small"}, "4", named)


@pytest.mark.parametrize("spec", [
    {"type": "nope"}, {"type": "int", "maximum": 3}, {"type": "regex", "pattern": "("},
    {"type": "path", "access": "write"}, "int", {"kind": "int"}, {"type": "small", "min": 1},
])
def test_bad_specs_are_policy_errors(spec):
    with pytest.raises(PolicyError):
        checker(spec, {"small": checker({"type": "int"})})


# Kinds that judge what a value does: destinations, client patterns, templates ---------------

class _Net:
    """The `network` entry of a compile context: the policy's destinations, compiled."""

    def __init__(self, entries):
        from mcp_infra_target.readonly.destinations import Destinations
        self.compiled = Destinations(entries, "network.destinations", PolicyError)

    def __call__(self):
        return self.compiled


def net_checker(spec, entries):
    return compile_type(spec, "test", {"paths": RULES, "named": {}, "network": _Net(entries)})


def reason_of(check, value):
    try:
        check(value, "test/rule")
    except Refusal as refusal:
        return refusal.reason
    return None


DESTINATIONS = ["db1.example.net", "Cache.Example.Net.", "10.1.0.0/16", "192.0.2.7", "::1",
                "2001:db8::/32"]


@pytest.mark.parametrize("value, reason", [
    ("db1.example.net", None), ("DB1.Example.NET.", None), ("cache.example.net", None),
    ("10.1.200.3", None), ("192.0.2.7", None), ("::1", None), ("2001:db8::5", None),
    ("::ffff:10.1.0.1", None),
    ("x.db1.example.net", "destination_not_allowed"), ("example.net", "destination_not_allowed"),
    ("db1", "destination_not_allowed"), ("10.2.0.1", "destination_not_allowed"),
    ("192.0.2.8", "destination_not_allowed"), ("2001:db9::1", "destination_not_allowed"),
    ("@10.1.0.1", "bad_value"), ("10.1.0.0/24", "bad_value"), ("fe80::1%eth0", "bad_value"),
    ("167837953", "bad_value"), ("0x0a010001", "bad_value"), ("10.1", "bad_value"),
    ("-db1.example.net", "bad_value"), ("db1.example.net:80", "bad_value"),
], ids=lambda v: str(v))
def test_destination_is_a_listed_name_or_an_address_in_a_listed_prefix(value, reason):
    assert reason_of(net_checker({"type": "destination"}, DESTINATIONS), value) == reason


def test_destination_accepts_the_host_own_name():
    import os
    node = os.uname().nodename
    check = net_checker({"type": "destination"}, [])
    assert reason_of(check, node) is None
    assert reason_of(check, node.split(".")[0].upper()) is None
    assert reason_of(check, "x" + node) == "destination_not_allowed"


@pytest.mark.parametrize("entries", [["db1.example.net", "10.0.0.0/33"], ["127.1"], ["a b"],
                                     ["2130706433"], [""], [7], ["-x.example"]])
def test_bad_destination_entries_are_policy_errors(entries):
    with pytest.raises(PolicyError, match="network.destinations"):
        _Net(entries)


@pytest.mark.parametrize("spec, good, bad", [
    ({"type": "pattern"}, ["error", "[0-9]{1,3}(\\.[0-9]{1,3}){3}", "a{128}", "func(", "^#"],
     ["", "(a{1,20}){1,20}", "a{129}", "((a+)+)+", "(a)\\1", "x" * 1025, "a\tb"]),
    ({"type": "pattern", "syntax": "pcre"}, ["err|fail", "(?i)x", "(?:ab)+", "\\d{1,5}", "[\\]]+"],
     ["(a|aa)+", "(a+)+", "(?=x)", "(?<n>x)", "(*UTF)x", "\\k<n>", "\\g1", "(?R)"]),
    ({"type": "pattern", "max_repeat_product": 10, "max_nesting": 1, "max_expansion": 12},
     ["a{10}", "ab*"], ["a{11}", "(a*)*", "a{6}b{6}c"]),
], ids=["regex", "pcre", "bounds"])
def test_pattern_kind_bounds_what_a_pattern_may_cost(spec, good, bad):
    for value in good:
        assert accepts(spec, value), value
    for value in bad:
        assert not accepts(spec, value), value


@pytest.mark.parametrize("spec, good, bad", [
    ({"type": "format", "syntax": "go", "fields": [".Names", ".State.Status"]},
     ["{{.Names}}", "table {{.Names}}\\t{{ .State.Status }}", "{{json .State.Status}}"],
     ["{{.Config.Env}}", "json", "table", "{{.}}", "{{json .}}", "{{.State}}", "x}", "{{.Names",
      "{{.Names | printf \"%s\"}}", "{{range .Names}}{{end}}", "{{- .Names}}", "{{/* c */}}"]),
    ({"type": "format", "syntax": "dollar", "fields": ["Package", "Version"]},
     ["${Package} ${Version}\\n", "${Package;-30}", "plain"],
     ["${Secret}", "${Package", "$Package", "${Package;x}", "{x}"]),
    ({"type": "format", "syntax": "percent", "fields": ["n", "s", "Y", ":z", "TY"]},
     ["%n %s", "%-10n", "%.3s", "100%%", "%:z", "%TY", "plain"],
     ["%q", "%", "%n %Q", "%Tq"]),
], ids=["go", "dollar", "percent"])
def test_format_kind_names_only_listed_fields(spec, good, bad):
    for value in good:
        assert accepts(spec, value), value
    for value in bad:
        assert not accepts(spec, value), value


def test_regex_groups_are_checked_by_their_types():
    spec = {"type": "regex", "pattern": "(?P<key>[a-z]{1,9})=(?P<value>[0-9]{1,3})?",
            "groups": {"key": {"type": "enum", "values": ["a", "b"]},
                       "value": {"type": "int", "min": 1, "max": 9}}}
    assert accepts(spec, "a=1") and accepts(spec, "b=")
    assert not accepts(spec, "c=1") and not accepts(spec, "a=10")


def test_enum_ignore_case_folds_ascii_only():
    spec = {"type": "enum", "values": ["NAME", "MAJ:MIN"], "ignore_case": True}
    assert accepts(spec, "name") and accepts(spec, "Maj:Min") and checker(spec)("name", "r") == "name"
    assert not accepts(spec, "nameſ") and not accepts(spec, "ſ")
    assert not accepts({"type": "enum", "values": ["NAME"]}, "name")


@pytest.mark.parametrize("spec", [
    {"type": "regex", "pattern": "(?P<a>x)", "groups": {"b": {"type": "int"}}},
    {"type": "regex", "pattern": "x", "groups": []},
    {"type": "pattern", "syntax": "perl"}, {"type": "pattern", "max_nesting": -1},
    {"type": "pattern", "max_repeat_product": "9"}, {"type": "format", "syntax": "go"},
    {"type": "format", "syntax": "go", "fields": ["Names"]},
    {"type": "format", "syntax": "jinja", "fields": ["x"]}, {"type": "enum", "values": []},
    {"type": "enum", "values": ["a"], "ignore_case": "yes"},
])
def test_bad_specs_of_the_new_kinds_are_policy_errors(spec):
    with pytest.raises(PolicyError):
        checker(spec)
