"""Every subcommand's --help has examples (cli_examples' table, or the parser's own
"examples:" epilog), every example parses with the real parser and reaches the subcommand it
illustrates, and every subcommand and option says what it is for. The tree is walked, so a
new subcommand without examples or help fails here."""

import argparse
import shlex

import pytest

from mcp_linux_infra import cli_examples
from mcp_linux_infra.cli import build_parser

SHELL = {"|", ">", ">>", "&&", ";"}  # an example may end in a redirection or a pipe
PARSERS = list(cli_examples.walk(build_parser()))


def _name(path: tuple[str, ...]) -> str:
    return " ".join(path) or "(the root)"


@pytest.mark.parametrize("path, parser", PARSERS, ids=[_name(p) for p, _ in PARSERS])
def test_every_subcommand_has_examples_in_its_help(path, parser):
    examples = cli_examples.parse(parser.epilog)
    assert examples, f"{_name(path)}: no examples (cli_examples.EXAMPLES, or an epilog " \
                     "starting with 'examples:')"
    assert "examples:\n  " in parser.format_help()  # kept as lines, not refilled


def _argv(command: str) -> list[str]:
    words = shlex.split(command, comments=True)  # an example may end in "# what it does"
    cut = next((i for i, w in enumerate(words) if w in SHELL), len(words))
    assert words[0] == cli_examples.PROG, command
    return words[1:cut]


EXAMPLES = [(path, parser, command) for path, parser in PARSERS
            for _, command in cli_examples.parse(parser.epilog)]


@pytest.mark.parametrize("path, parser, command", EXAMPLES, ids=[e[2] for e in EXAMPLES])
def test_every_example_parses_and_runs_its_subcommand(path, parser, command):
    try:
        args = build_parser().parse_args(_argv(command))
    except SystemExit:
        pytest.fail(f"{_name(path)}: the example does not parse: {command}")
    if parser.get_default("func") is not None:  # a group shows its subcommands' examples
        assert args.func is parser.get_default("func"), command


def test_the_table_names_only_real_subcommands_without_their_own_examples():
    shown = {" ".join(path): parser.epilog for path, parser in PARSERS}
    for name, examples in cli_examples.EXAMPLES.items():
        assert name in shown, f"{name}: no such subcommand"
        assert shown[name] == cli_examples.epilog(examples), f"{name}: has its own examples"


def test_a_parser_with_its_own_examples_keeps_them():
    root = argparse.ArgumentParser(prog=cli_examples.PROG)
    sub = root.add_subparsers()
    own = sub.add_parser("deploy", help="deploy targets",
                         epilog="examples:\n  mcp-linux-infra deploy web")
    sub.add_parser("doctor", help="check hosts")
    cli_examples.apply(root)
    assert own.epilog == "examples:\n  mcp-linux-infra deploy web"
    assert own.description == "deploy targets"
    assert own.formatter_class is argparse.RawDescriptionHelpFormatter
    assert cli_examples.parse(root.epilog)[0] == ("", "mcp-linux-infra deploy web")
    assert "mcp-linux-infra doctor" in root.epilog


HELPLESS = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


@pytest.mark.parametrize("path, parser", PARSERS, ids=[_name(p) for p, _ in PARSERS])
def test_every_subcommand_and_option_has_a_help_text(path, parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"{_name(path)} {choice.dest}: no help"
        elif not isinstance(action, HELPLESS):
            assert action.help, f"{_name(path)} {action.option_strings or action.dest}: no help"


@pytest.mark.parametrize("path, parser", [(p, x) for p, x in PARSERS
                                          if p and p[-1] in ("list", "status", "show")],
                         ids=lambda v: _name(v) if isinstance(v, tuple) else "")
def test_every_listing_has_json(path, parser):
    assert "--json" in parser._option_string_actions, f"{_name(path)}: no --json"
