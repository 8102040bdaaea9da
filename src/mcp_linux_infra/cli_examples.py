"""Examples in every subcommand's --help, as data: `EXAMPLES` maps a subcommand ("approvals
approve") to (comment, command line) pairs; `apply` writes them as an "examples:" epilog on
each parser once the tree is built. A parser may carry its own epilog instead, in the same
form (a first line "examples:", then indented lines: "# comment", then the command). A
command group's examples are its subcommands' first ones. tests/cli/test_cli_help.py parses
every example with the real parser, so none can rot."""

import argparse
from collections.abc import Iterator

PROG = "mcp-linux-infra"
HEADER = "examples:"
Example = tuple[str, str]  # (what it does, the command line)
BASH_COMPLETIONS = "~/.local/share/bash-completion/completions/mcp-linux-infra"

EXAMPLES: dict[str, list[Example]] = {
    "keys init": [
        ("the reader, action and operator key pairs (an existing key is kept)",
         "mcp-linux-infra keys init"),
        ("elsewhere, with a passphrase on the operator key",
         "mcp-linux-infra keys init --dir ./keys --ask-operator-passphrase"),
    ],
    "lab up": [
        ("one target, lab-01 (as root; the first run builds the image)",
         "mcp-linux-infra lab up"),
        ("three targets, lab-01 to lab-03", "mcp-linux-infra lab up --hosts 3"),
    ],
    "lab status": [
        ("targets, their SSH ports and systemd state", "mcp-linux-infra lab status"),
        ("the same for a script", "mcp-linux-infra lab status --json"),
    ],
    "lab ssh": [
        ("a root shell on lab-01", "mcp-linux-infra lab ssh lab-01"),
        ("one command as the read tier's user",
         "mcp-linux-infra lab ssh --user mcp-reader lab-01 list"),
    ],
    "lab down": [("stop and remove every lab target", "mcp-linux-infra lab down")],
    "serve": [
        ("stdio, as Claude Desktop starts it", "mcp-linux-infra serve"),
        ("HTTP (clients need a bearer token: tokens new)",
         "mcp-linux-infra serve --transport http --port 8000"),
    ],
    "console": [
        ("the approval console on the configured address", "mcp-linux-infra console"),
        ("on a given address and port", "mcp-linux-infra console --bind 127.0.0.1 --port 8443"),
    ],
    "hosts list": [
        ("every inventory host, its groups and trusted host keys", "mcp-linux-infra hosts list"),
        ("one group, for a script", "mcp-linux-infra hosts list web --json"),
    ],
    "hosts trust": [
        ("each host of a group: show its key fingerprint, ask, record it",
         "mcp-linux-infra hosts trust web"),
        ("one host, without asking (its fingerprint checked out of band)",
         "mcp-linux-infra hosts trust web-01 --yes"),
    ],
    "approvals list": [
        ("what waits for a signature", "mcp-linux-infra approvals list --state pending"),
        ("one host's last ten, for a script",
         "mcp-linux-infra approvals list --host web-01 --limit 10 --json"),
    ],
    "approvals show": [
        ("one proposal: preview, approvals, history", "mcp-linux-infra approvals show p3f2a9c1e"),
        ("the same for a script", "mcp-linux-infra approvals show p3f2a9c1e --json"),
    ],
    "approvals approve": [
        ("read it, confirm, sign with the settings' operator key",
         "mcp-linux-infra approvals approve p3f2a9c1e"),
        ("as another operator, with that operator's key, valid 15 minutes",
         "mcp-linux-infra approvals approve p3f2a9c1e --as alice --key alice.key --ttl 15m"),
        ("sign and execute it from here", "mcp-linux-infra approvals approve p3f2a9c1e --execute"),
    ],
    "approvals reject": [
        ("refuse it; the reason is told to the model",
         'mcp-linux-infra approvals reject p3f2a9c1e --reason "not during business hours"'),
    ],
    "operators enroll": [
        ("a one-time link for alice to register a passkey", "mcp-linux-infra operators enroll alice"),
        ("a link that works for an hour", "mcp-linux-infra operators enroll alice --ttl 3600"),
    ],
    "operators add": [
        ("register bob's CLI signing key",
         "mcp-linux-infra operators add bob --public-key bob_ed25519.pub"),
    ],
    "operators list": [
        ("operators, then the role's list to deploy", "mcp-linux-infra operators list"),
        ("active operators, for a script", "mcp-linux-infra operators list --active --json"),
    ],
    "operators revoke": [
        ("stop listing bob's key (then deploy the printed list)",
         "mcp-linux-infra operators revoke bob"),
    ],
    "doctor": [
        ("every inventory host", "mcp-linux-infra doctor"),
        ("one group, for a script", "mcp-linux-infra doctor web --json"),
        ("one slow host", "mcp-linux-infra doctor web-01 --timeout 30"),
    ],
    "deploy": [
        ("install or update the target tier on every inventory host", "mcp-linux-infra deploy"),
        ("one group, dry run: what would change", "mcp-linux-infra deploy web --check"),
        ("one host, with the site's role variables",
         "mcp-linux-infra deploy web-01 -e @site-vars.yml"),
        ("the recap per host, for a script", "mcp-linux-infra deploy --json"),
    ],
    "tokens new": [
        ("a read-only token for one client", "mcp-linux-infra tokens new claude-desktop"),
        ("a token that may also propose actions",
         "mcp-linux-infra tokens new ci --scopes read,propose"),
        ("a team's token: only the hosts of its groups",
         "mcp-linux-infra tokens new web-team --scopes read,propose --groups web,db"),
        ("for Prometheus: /metrics only", "mcp-linux-infra tokens new prometheus --scopes metrics"),
    ],
    "tokens list": [
        ("every token: scopes, groups, created, last used", "mcp-linux-infra tokens list"),
        ("the same for a script", "mcp-linux-infra tokens list --json"),
    ],
    "tokens revoke": [
        ("a running server refuses it from its next request",
         "mcp-linux-infra tokens revoke web-team"),
    ],
    "config show": [
        ("every setting, its value and where it came from", "mcp-linux-infra config show"),
        ("the same for a script", "mcp-linux-infra config show --json"),
        ("with another config file", "mcp-linux-infra --config ./config.toml config show"),
    ],
    "completion": [
        ("bash, for your user (a new shell loads it)",
         "mcp-linux-infra completion bash > " + BASH_COMPLETIONS),
        ("zsh (~/.zfunc in your $fpath)",
         "mcp-linux-infra completion zsh > ~/.zfunc/_mcp-linux-infra"),
        ("tcsh", "mcp-linux-infra completion tcsh >> ~/.tcshrc"),
    ],
}


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
         ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the tree with its subcommand path, the root first, each once."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, child in action.choices.items():
                if id(child) not in seen:  # an alias names the same parser
                    seen.add(id(child))
                    yield from walk(child, (*path, name))


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str | None]]:
    """A group's subcommands: (name, help), in the order they were added."""
    return [(a.dest, a.help) for action in parser._actions
            if isinstance(action, argparse._SubParsersAction) for a in action._choices_actions]


def epilog(examples: list[Example]) -> str:
    return "\n".join([HEADER, *(f"  # {comment}\n  {command}" if comment else f"  {command}"
                                for comment, command in examples)])


def parse(text: str | None) -> list[Example]:
    """The examples of an epilog in this form ([] for any other epilog)."""
    if not text or text.splitlines()[0].strip() != HEADER:
        return []
    found, comment = [], ""
    for raw in text.splitlines()[1:]:
        item = raw.strip()
        if item.startswith("#"):
            comment = item.lstrip("# ")
        elif item:
            found.append((comment, item))
            comment = ""
    return found


def apply(root: argparse.ArgumentParser) -> None:
    """Give every parser its examples (its own epilog if it has one, else the table's, else
    its subcommands' first ones), a description (its help, when it has none) and a help
    formatter that keeps their lines."""
    parsers = list(walk(root))
    for path, parser in parsers:
        for name, text in subcommands(parser):
            child = next(p for q, p in parsers if q == (*path, name))
            if child.description is None:
                child.description = text
    for path, parser in reversed(parsers):  # children before their group
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        if parse(parser.epilog):
            continue
        examples = EXAMPLES.get(" ".join(path))
        if examples is None:
            children = [p for q, p in parsers if len(q) == len(path) + 1 and q[:-1] == path]
            examples = [parse(c.epilog)[0] for c in children if parse(c.epilog)]
        if examples:
            parser.epilog = epilog(examples)
