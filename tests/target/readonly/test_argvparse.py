"""The argv validator: how words become a checked, canonical argv (or a refusal)."""

import pytest
from mcp_infra_target.core.refusal import Refusal
from mcp_infra_target.readonly import argvparse
from wrapper_support import load_document, mini_policy

TRUE = ["/usr/bin/true", "/bin/true"]

COMMANDS = {
    "tool": {
        "executable": TRUE,
        "forced": ["--no-pager"],
        "numeric_option": "-n",
        "options": {
            "-a --all": None, "-l": None, "-n --lines": {"type": "int", "min": 0, "max": 100},
            "-u --unit": {"type": "regex", "pattern": "[a-z.]{1,20}"},
            "-e --regexp": {"type": "text"},
            "-b --boot": {"type": "regex", "pattern": "-?[0-9]{1,3}", "mode": "lookahead"},
            "--color": {"type": "enum", "values": ["never", "auto"], "mode": "attached"},
            "-w": {"type": "int", "min": 1, "max": 9, "mode": "attached"},
        },
        "defaults": [{"unless": ["-n", "--lines"], "args": ["-n", "10"]}],
        "operands": {"items": [{"type": "text"}], "rest": {"type": "regex", "pattern": "/[a-z/]{1,30}"}, "max": 3},
        "operand_variants": [{"when": ["-e", "--regexp"], "operands": {"rest": {"type": "regex", "pattern": "/[a-z/]{1,30}"}, "max": 3}}],
    },
    "ordered": {
        "executable": TRUE, "permute": False, "end_of_options": False,
        "options": {"-t": {"type": "enum", "values": ["A", "MX"]}, "-v": None},
        "operands": {"rest": {"type": "hostname"}, "max": 2},
    },
    "ctl": {
        "executable": TRUE, "forced": ["--no-pager"], "bare": True,
        "options": {"-l --full": None, "-H --host-like-but-allowed-for-test": None},
        "subcommands": {
            "status": {"aliases": ["st"], "operands": {"rest": {"type": "regex", "pattern": "[a-z]{1,9}"}, "max": 4}},
            "logs": {"options": {"--tail -n": {"type": "int", "min": 1, "max": 9}}, "forced": ["--no-follow"],
                     "operands": {"items": [{"type": "regex", "pattern": "[a-z]{1,9}"}], "min": 1}},
        },
    },
    "net": {
        "executable": TRUE, "style": "words",
        "options": {"-br -brief": None, "-f": {"type": "enum", "values": ["inet"]}},
        "subcommands": {
            "address": {"aliases": ["a", "addr"], "bare": True, "subcommands": {
                "show": {"aliases": ["s"], "options": {"dev": {"type": "regex", "pattern": "[a-z0-9]{1,15}"}, "up": None},
                         "operands": {"items": [{"type": "regex", "pattern": "[a-z0-9]{1,15}"}]}}}},
        },
    },
    "walk": {
        "executable": TRUE, "style": "words", "operands_first": True,
        "options": {"-name": {"type": "text"}, "-type": {"type": "enum", "values": ["f", "d"]},
                    "-o": None, "(": None, ")": None, "!": None,
                    "-time": {"type": "int", "min": 1, "max": 9, "mode": "equals"}},
        "operands": {"rest": {"type": "regex", "pattern": "/[a-z/]{0,30}"}, "min": 1, "max": 4},
    },
    "psish": {
        "executable": TRUE, "bsd_flags": "aux",
        "options": {"-e": None, "-o": {"type": "regex", "pattern": "[a-z,]{1,30}"}},
    },
    "lookup": {
        "executable": TRUE, "tagged": {"@": {"type": "host"}}, "forced": ["+time=2"],
        "options": {"+short": None, "+tries": {"type": "int", "min": 1, "max": 3, "mode": "equals"}},
        "operands": {"rest": {"type": "hostname"}, "max": 2},
    },
}


@pytest.fixture(scope="module")
def policy():
    return load_document(mini_policy(COMMANDS))


def argv(policy, *words):
    return argvparse.plan(policy, list(words)).argv[1:]


def refused(policy, *words):
    with pytest.raises(Refusal) as caught:
        argvparse.plan(policy, list(words))
    return caught.value.reason


def test_clusters_attached_values_and_canonical_emission(policy):
    assert argv(policy, "tool", "-al", "x") == ["--no-pager", "-a", "-l", "-n", "10", "x"]
    assert argv(policy, "tool", "-an5", "x") == ["--no-pager", "-a", "-n", "5", "x"]
    assert argv(policy, "tool", "-n", "5", "x") == ["--no-pager", "-n", "5", "x"]
    assert argv(policy, "tool", "--lines=5", "x") == ["--no-pager", "--lines", "5", "x"]
    assert argv(policy, "tool", "--lines", "5", "x") == ["--no-pager", "--lines", "5", "x"]
    assert argv(policy, "tool", "-7", "x") == ["--no-pager", "-n", "7", "x"]


def test_options_after_operands_are_options_gnu_permutes(policy):
    assert argv(policy, "tool", "x", "-l", "/a") == ["--no-pager", "-l", "-n", "10", "x", "/a"]


def test_value_taken_verbatim_even_when_dashed(policy):
    assert argv(policy, "tool", "-e", "-l", "/a") == ["--no-pager", "-e", "-l", "-n", "10", "/a"]
    assert argv(policy, "tool", "-u", "a.b", "x") == ["--no-pager", "-u", "a.b", "-n", "10", "x"]
    assert refused(policy, "tool", "-n", "-5", "x") == "bad_value"
    assert refused(policy, "tool", "-u", "--all", "x") == "bad_value"


def test_end_of_options_and_dash_operands(policy):
    assert argv(policy, "tool", "--", "-a", "/b") == ["--no-pager", "-n", "10", "--", "-a", "/b"]
    assert argv(policy, "tool", "-e", "x", "--", "/b") == ["--no-pager", "-e", "x", "-n", "10", "/b"]
    assert refused(policy, "tool", "-e", "x", "--", "-a") == "bad_value"


@pytest.mark.parametrize("word, reason", [
    ("--al", "unknown_option"), ("--all=yes", "option_takes_no_value"), ("-z", "unknown_option"),
    ("-az", "unknown_option"), ("--lin=5", "unknown_option"), ("--LINES=5", "unknown_option"),
    ("---all", "unknown_option"), ("-", "bad_value"), ("--color=always", "bad_value"),
])
def test_exact_spellings_only(policy, word, reason):
    assert refused(policy, "tool", word, "x") == reason


def test_needs_value(policy):
    assert refused(policy, "tool", "x", "-n") == "option_needs_value"
    assert refused(policy, "tool", "x", "--unit") == "option_needs_value"


def test_empty_words(policy):
    assert refused(policy, "tool", "-u", "", "x") == "bad_value"
    assert refused(policy, "tool", "") == "bad_value"
    assert refused(policy, "") == "unknown_command"


def test_optional_values_are_attached(policy):
    assert argv(policy, "tool", "--color", "x") == ["--no-pager", "--color", "-n", "10", "x"]
    assert argv(policy, "tool", "--color=never", "x") == ["--no-pager", "--color=never", "-n", "10", "x"]
    assert argv(policy, "tool", "-w3", "x") == ["--no-pager", "-w3", "-n", "10", "x"]
    assert refused(policy, "tool", "-w", "3", "x") == "bad_value"  # 3 is an operand, x is not a path


def test_lookahead_takes_only_valid_values(policy):
    assert argv(policy, "tool", "-b", "-1", "x") == ["--no-pager", "-b-1", "-n", "10", "x"]
    assert argv(policy, "tool", "-b", "-l", "x") == ["--no-pager", "-b", "-l", "-n", "10", "x"]
    assert argv(policy, "tool", "x", "-b") == ["--no-pager", "-b", "-n", "10", "x"]
    assert argv(policy, "tool", "--boot", "3", "x") == ["--no-pager", "--boot=3", "-n", "10", "x"]


def test_operand_variants_and_counts(policy):
    assert refused(policy, "tool", "-e", "pat", "not-a-path") == "bad_value"
    assert refused(policy, "tool", "a", "/b", "/c", "/d") == "too_many_operands"


def test_repeated_options_are_fine(policy):
    assert argv(policy, "tool", "-u", "a", "-u", "b", "x")[1:5] == ["-u", "a", "-u", "b"]


def test_non_permuting_commands_stop_options_at_the_first_operand(policy):
    assert argv(policy, "ordered", "-t", "MX", "example.com") == ["-t", "MX", "example.com"]
    assert refused(policy, "ordered", "example.com", "-v") == "bad_value"  # an operand, not -v
    assert refused(policy, "ordered", "--", "example.com") == "unknown_option"


def test_subcommands_by_primary_name_with_level_options(policy):
    assert argv(policy, "ctl", "st", "nginx", "-l") == ["--no-pager", "-l", "status", "nginx"]
    assert argv(policy, "ctl") == ["--no-pager"]
    assert argv(policy, "ctl", "-l") == ["--no-pager", "-l"]
    assert argv(policy, "ctl", "logs", "-n", "3", "web") == ["--no-pager", "logs", "--no-follow", "-n", "3", "web"]
    assert refused(policy, "ctl", "-n", "3", "logs", "web") == "unknown_option"
    assert refused(policy, "ctl", "stop", "nginx") == "unknown_subcommand"
    assert refused(policy, "ctl", "status", "-n", "3") == "unknown_option"
    assert refused(policy, "ctl", "logs") == "too_few_operands"


def test_words_style(policy):
    assert argv(policy, "net", "-br", "a") == ["-br", "address"]
    assert argv(policy, "net", "a", "s", "dev", "eth0", "up") == ["address", "show", "dev", "eth0", "up"]
    assert argv(policy, "net", "a", "-br") == ["-br", "address"]
    assert refused(policy, "net", "-b", "a") == "unknown_option"
    assert refused(policy, "net", "-brx", "a") == "unknown_option"
    assert refused(policy, "net", "a", "dev", "eth0") == "unknown_subcommand"
    assert refused(policy, "net", "address", "show", "dev") == "option_needs_value"
    assert refused(policy, "net", "netns", "exec") == "unknown_subcommand"


def test_operands_first_and_equals_mode(policy):
    assert argv(policy, "walk", "/var", "-name", "*.log", "-o", "(", "!", "-type", "d", ")") == [
        "/var", "-name", "*.log", "-o", "(", "!", "-type", "d", ")"]
    assert argv(policy, "walk", "-time=3", "/var") == ["/var", "-time=3"]
    assert refused(policy, "walk", "/var", "-time", "3") == "option_needs_value"
    assert refused(policy, "walk", "/var", "-exec", "sh", ";") == "unknown_option"
    assert refused(policy, "walk", "-name", "x") == "too_few_operands"


def test_bsd_clusters(policy):
    assert argv(policy, "psish", "aux") == ["aux"]
    assert argv(policy, "psish", "-eo", "pid,comm") == ["-e", "-o", "pid,comm"]
    assert refused(policy, "psish", "auxe") == "too_many_operands"
    assert refused(policy, "psish", "e") == "too_many_operands"


def test_tagged_and_plus_words(policy):
    assert argv(policy, "lookup", "@1.1.1.1", "+short", "example.com") == [
        "+time=2", "@1.1.1.1", "+short", "example.com"]
    assert argv(policy, "lookup", "+tries=2", "x.org") == ["+time=2", "+tries=2", "x.org"]
    assert refused(policy, "lookup", "@-p", "x.org") == "bad_value"
    assert refused(policy, "lookup", "+tries", "x.org") == "option_needs_value"
    assert refused(policy, "lookup", "+sho", "x.org") == "bad_value"


def test_command_lookup_is_by_bare_name(policy):
    for word in ("/usr/bin/true", "./tool", "../tool", "bin/tool"):
        assert refused(policy, word) == "command_path_not_allowed"
    assert refused(policy, "TOOL") == "unknown_command"
    assert refused(policy, "tool2") == "unknown_command"


def test_canonical_argv_is_a_fixed_point(policy):
    for words in (["tool", "-al", "x"], ["tool", "-b", "-1", "-e", "-x", "/a"], ["ctl", "st", "a", "-l"],
                  ["net", "-br", "a", "s", "dev", "eth0"], ["walk", "/v", "-name", "x"], ["psish", "aux", "-o", "pid"]):
        first = argvparse.plan(policy, words)
        again = argvparse.plan(policy, [words[0]] + [w for w in first.argv[1:] if w not in first.leaf.forced and w not in first.command.forced])
        assert again.argv == first.argv, words


def test_missing_executable_is_a_refusal():
    document = mini_policy({"ghost": {"executable": ["/nonexistent/ghost"]}})
    with pytest.raises(Refusal) as caught:
        argvparse.plan(load_document(document), ["ghost"])
    assert caught.value.reason == "command_not_installed"


REQUIRING = {
    "journal": {
        "executable": TRUE,
        "options": {"-o --output": {"type": "enum", "values": ["short", "json"]},
                    "--output-fields": {"type": "regex", "pattern": "[A-Z,]{1,20}"},
                    "-b": {"type": "int", "min": 0, "max": 9, "mode": "lookahead"}},
        "requires": [{"option": "-o", "values": ["json"], "needs": ["--output-fields"],
                      "why": "json prints every field"}],
    },
    "engine": {
        "executable": TRUE,
        "subcommands": {
            "inspect": {"options": {"-f --format": {"type": "text"}},
                        "requires": [{"needs": ["-f", "--format"]}],
                        "operands": {"rest": {"type": "text"}, "max": 2}},
            "ps": {},
        },
    },
}


@pytest.mark.parametrize("words, reason", [
    (["journal", "-o", "short"], None), (["journal"], None),
    (["journal", "--output=json", "--output-fields=MESSAGE"], None),
    (["journal", "--output-fields=MESSAGE", "-ojson"], None),
    (["journal", "-o", "json"], "option_required"), (["journal", "-ojson"], "option_required"),
    (["journal", "--output", "json", "-b"], "option_required"),
    (["engine", "inspect", "-f", "x", "a"], None), (["engine", "inspect", "a", "--format=x"], None),
    (["engine", "inspect", "a"], "option_required"), (["engine", "ps"], None),
], ids=lambda v: " ".join(v) if isinstance(v, list) else str(v))
def test_requirements_tie_an_option_or_a_verb_to_another_option(words, reason):
    loaded = load_document(mini_policy(REQUIRING))
    if reason is None:
        argvparse.plan(loaded, words)
    else:
        assert refused(loaded, *words) == reason


def test_a_requirement_names_an_option_of_its_node_or_an_ancestor():
    from mcp_infra_target.readonly.valuetypes import PolicyError
    broken = {"journal": dict(REQUIRING["journal"], requires=[{"option": "-x", "needs": ["-o"]}])}
    with pytest.raises(PolicyError, match="requires"):
        load_document(mini_policy(broken)).validate()


def test_lookahead_refuses_a_value_refused_for_what_it_names_not_for_its_shape():
    document = mini_policy({"lsofish": {
        "executable": TRUE, "permute": False,
        "options": {"-i": {"type": "destination", "mode": "lookahead"}},
        "operands": {"rest": {"type": "regex", "pattern": "/[a-z]{1,9}"}, "max": 2}}})
    document["network"] = {"destinations": ["db.example.net"]}
    loaded = load_document(document)
    assert argv(loaded, "lsofish", "-i", "db.example.net") == ["-idb.example.net"]
    assert argv(loaded, "lsofish", "-i", "/tmp") == ["-i", "/tmp"]
    assert refused(loaded, "lsofish", "-i", "x.example.net") == "destination_not_allowed"
