"""Property tests: the tokeniser and validators never crash on arbitrary input, and never
produce an argv with a command, option or subcommand the policy does not list."""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp_infra_target.core.refusal import Refusal
from mcp_infra_target.readonly import argvparse, pathrules, policy, screen, tokenise
from mcp_infra_target.readonly.handover import Passed
from wrapper_support import POLICY_FILE

LOADED = policy.load(str(POLICY_FILE))
NAMES = sorted(LOADED.commands)
HOSTILE = ["-exec", "--follow", "-f", "-F", "--file=/etc/shadow", "/etc/shadow", "/var/log",
           "/var/log/../../etc/shadow", "/proc/self/environ", "x;id", "$(id)", "`id`", "--",
           "-", "", "-1", "--=", "-n-1", "@1.1.1.1", "+short", "aux", "e", "-H", "--host=x",
           "a=b", "/proc/1/root/etc/shadow", "../../etc/passwd", "--no-pager", "-tlnp"]
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def vocabulary(command):
    words = set(HOSTILE)
    for node in command.walk():
        words.update(node.options)
        words.update(node.subcommands)
    words.update(tag + "example.org" for tag in command.tagged)
    return sorted(words)


@SETTINGS
@given(st.text(max_size=300))
def test_screen_and_split_never_crash(text):
    try:
        screen.check(text, 4096)
        words = tokenise.split(text, 128)
    except Refusal:
        return
    assert words and all(isinstance(word, str) for word in words)


def _node_path(plan):
    chain, node = [], plan.leaf
    while node is not None:
        chain.insert(0, node)
        node = node.parent
    return chain


def assert_within_policy(plan):
    command = plan.command
    chain = _node_path(plan)
    assert plan.argv[0] in command.executables
    spellings = {s for node in chain for s in node.options}
    forced = {w for node in chain for w in node.forced}
    defaults = {w for node in chain for _, args in node.defaults for w in args}
    children = {node.name for node in chain[1:]}
    for kind, spelling, value in plan.items:
        if kind == "option":
            assert spelling in spellings or spelling == command.numeric_option
        elif kind == "subcommand":
            assert spelling in children
        elif kind == "forced":
            assert spelling in forced
        elif kind == "default":
            assert spelling in defaults
        elif kind == "bsd":
            assert set(spelling) <= set(command.bsd_flags)
        elif kind == "tagged":
            assert spelling in command.tagged
        else:
            assert kind == "operand" and value
    for leaf_word in plan.argv[1:]:
        assert "\x00" not in leaf_word


@SETTINGS
@given(st.data())
def test_plans_never_leave_the_policy(data):
    name = data.draw(st.sampled_from(NAMES))
    words = data.draw(st.lists(st.one_of(st.sampled_from(vocabulary(LOADED.commands[name])),
                                         st.text(max_size=12)), max_size=6))
    try:
        plan = argvparse.plan(LOADED, [name] + words)
    except Refusal as refusal:
        assert refusal.reason and refusal.rule
        return
    assert_within_policy(plan)


@SETTINGS
@given(st.lists(st.text(max_size=8), min_size=1, max_size=6))
def test_unknown_first_words_are_always_refused(words):
    if words[0] in LOADED.commands:
        return
    try:
        argvparse.plan(LOADED, words)
    except Refusal as refusal:
        assert refusal.reason in ("unknown_command", "command_path_not_allowed")
        return
    raise AssertionError(f"a command outside the policy was planned: {words!r}")


COMPONENTS = ["etc", "shadow", "passwd", "..", ".", "var", "log", "proc", "self", "environ",
              "root", ".ssh", "x.key", "1", "status", "fd", "0", "hosts", "os-release", "", "run"]


@SETTINGS
@given(st.lists(st.sampled_from(COMPONENTS), max_size=6), st.sampled_from(["read", "list"]))
def test_allowed_paths_resolve_inside_roots_and_outside_the_deny_list(parts, access):
    raw = "/" + "/".join(parts)
    rules = LOADED.paths
    try:
        passed = rules.check(raw, access, "prop")
    except Refusal:
        return
    resolved = os.path.realpath(raw)
    assert rules.denied_by(resolved) is None and rules.denied_by(pathrules.lexical(raw)) is None
    assert rules.root_of(resolved, access) is not None
    if access == "read":  # the file itself is handed over, never a name
        assert passed == f"/dev/fd/{passed.fds[0]}" and passed.real == resolved
    if isinstance(passed, Passed):
        passed.close()
