"""Every value type of the policy language, its parameters, and spec errors."""

import pytest

import wrapper_support  # noqa: F401  (puts system/lib on sys.path)
from mcp_infra_target.pathrules import PathRules
from mcp_infra_target.refusal import Refusal
from mcp_infra_target.valuetypes import PolicyError, compile_type

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
