"""Typed validation of one request's words against a command's spec, giving a Plan.

The parser reads the words the way the binary will: style "gnu" mirrors getopt_long
(short clusters `-tlnp`, attached values `-n50`, `--opt=value` or `--opt value`, `--`,
permutation), style "words" matches whole words (find's `-name`, ip's `-br`, `dev`).
Only spellings listed in the policy are options: an abbreviation such as `--fol` is
simply unknown, and every listed long spelling is a complete option name, so getopt's
prefix matching never comes into play. The Plan's argv is then re-emitted canonically
(subcommands by primary name, optional-argument values attached, `--` before any operand
that starts with `-`), so the binary cannot read it differently from how it was checked.
"""

from mcp_infra_target.core.refusal import Refusal
from mcp_infra_target.readonly.handover import collecting
from mcp_infra_target.readonly.valuetypes import PolicyError


class Plan:
    """What will run: argv (executable from the policy), limits, rule, and parsed items;
    `held` has the descriptors of checked paths in argv (handover.Held): whoever plans
    closes it (`close`) once the plan has run or will not run."""

    def __init__(self, command, leaf, argv, items):
        self.command = command
        self.leaf = leaf
        self.rule = leaf.rule
        self.argv = argv
        self.items = items
        self.held = None

    def close(self) -> None:
        if self.held is not None:
            self.held.close()

    def limit(self, policy, key: str):
        for node in (self.leaf, self.command):
            value = getattr(node, key)
            if value is not None:
                return value
        return getattr(policy, key)


def plan(policy, tokens: list) -> Plan:
    """Validate `tokens` (command name first) against `policy`; return a Plan or raise Refusal."""
    name = tokens[0]
    if "/" in name:
        raise Refusal("command_path_not_allowed", "policy/commands",
                      f"commands are named, not given as paths: {name!r}")
    try:
        command = policy.command(name)
    except PolicyError as error:
        raise Refusal("policy_invalid", "policy/load", str(error), command=name)
    if command is None:
        raise Refusal("unknown_command", "policy/commands", f"{name!r} is not in the policy")
    try:
        with collecting() as held:  # a refusal on the way closes what was already opened
            result = _emit(command, _Parser(command, tokens[1:]).run())
        result.held = held
        return result
    except Refusal as refusal:
        refusal.command = refusal.command or command.name
        raise


class _Parsed:
    def __init__(self, command):
        self.path = [command]
        self.options = [[]]
        self.operands = []


class _Parser:
    def __init__(self, command, words):
        self.command = command
        self.words = words
        self.pos = 0
        self.result = _Parsed(command)
        self.end_of_options = False

    def fail(self, reason, detail):
        raise Refusal(reason, self.result.path[-1].rule, detail, command=self.command.name)

    def lookup(self, spelling):
        for node in reversed(self.result.path):
            spec = node.options.get(spelling)
            if spec is not None:
                return spec
        return None

    def take_next(self, spelling):
        if self.pos >= len(self.words):
            self.fail("option_needs_value", f"{spelling} needs a value")
        self.pos += 1
        return self.words[self.pos - 1]

    def peek_value(self, spec):
        """Lookahead options (journalctl -b, -n) take the next word only if it is a valid value;
        a word that has the value's shape but is refused for what it names (a destination the
        policy does not list) is refused as that value, not read as something else."""
        if self.pos < len(self.words):
            try:
                value = spec.check(self.words[self.pos], self.result.path[-1].rule)
            except Refusal as refusal:
                if refusal.reason != "bad_value":
                    raise
                return None
            self.pos += 1
            return value
        return None

    def add_option(self, spec, spelling, value):
        if value is not None:
            value = spec.check(value, self.result.path[-1].rule)
        self.result.options[spec.level].append(("option", spelling, spec, value))

    def whole_word(self, spec, word):
        """An option spelled as a whole word, with no attached value."""
        if not spec.takes_value or spec.mode == "attached":
            self.add_option(spec, word, None)
        elif spec.mode == "lookahead":
            self.result.options[spec.level].append(("option", word, spec, self.peek_value(spec)))
        elif spec.mode == "equals":
            self.fail("option_needs_value", f"{word} needs =VALUE")
        else:
            self.add_option(spec, word, self.take_next(word))

    def attached(self, spec, spelling, value):
        if not spec.takes_value:
            self.fail("option_takes_no_value", f"{spelling} takes no value")
        self.add_option(spec, spelling, value)

    def run(self):
        gnu = self.command.style == "gnu"
        while self.pos < len(self.words):
            word = self.words[self.pos]
            self.pos += 1
            if self.end_of_options:
                self.operand(word)
            elif word == "--" and self.command.end_of_options:
                self.end_of_options = True
            elif self.lookup(word) is not None:
                self.whole_word(self.lookup(word), word)
            elif "=" in word and self.equals_option(word):
                continue
            elif word[:1] in self.command.tagged:
                value = self.command.tagged[word[0]](word[1:], self.command.rule)
                self.result.options[0].append(("tagged", word[0], None, value))
            elif word.startswith("-") and len(word) > 1:
                if not gnu or word.startswith("--"):
                    self.fail("unknown_option", "{} is not an allowed option".format(word.split("=")[0]))
                self.short_cluster(word)
            elif self.command.bsd_flags and word.isalpha() and set(word) <= set(self.command.bsd_flags):
                self.result.options[0].append(("bsd", word, None, None))
            else:
                self.operand(word)
        return self.result

    def equals_option(self, word):
        spelling, _, value = word.partition("=")
        spec = self.lookup(spelling)
        if spec is None or not (spelling.startswith("--") or spec.mode == "equals"):
            return False
        self.attached(spec, spelling, value)
        return True

    def short_cluster(self, word):
        numeric = self.command.numeric_option
        if numeric is not None and word[1:].isdigit():
            self.add_option(self.command.options[numeric], numeric, word[1:])
            return
        index = 1
        while index < len(word):
            spelling = "-" + word[index]
            spec = self.lookup(spelling)
            if spec is None:
                self.fail("unknown_option", "{} is not an allowed option{}".format(spelling, f" (in {word})" if len(word) > 2 else ""))
            rest = word[index + 1:]
            if not spec.takes_value:
                self.add_option(spec, spelling, None)
                index += 1
                continue
            if rest:
                if spec.mode == "equals":
                    self.fail("option_needs_value", f"{spelling} needs =VALUE")
                self.add_option(spec, spelling, rest)
            else:
                self.whole_word(spec, spelling)
            return

    def operand(self, word):
        node = self.result.path[-1]
        if node.subcommands and not self.result.operands:
            child = node.subcommands.get(word)
            if child is None:
                self.fail("unknown_subcommand", f"{word!r} is not an allowed subcommand of {node.rule}")
            self.result.path.append(child)
            self.result.options.append([])
            return
        self.result.operands.append(word)
        if self.command.style == "gnu" and not self.command.permute:
            self.end_of_options = True


def _present(parsed):
    spellings = set()
    for level in parsed.options:
        for kind, _, spec, _ in level:
            if spec is not None:
                spellings.update(spec.spellings)
    return spellings


def _requirements(parsed, present):
    """Options (or values of them) allowed only together with another option: journalctl's
    all-field output modes with an allow-listed --output-fields, docker inspect with an
    allow-listed --format."""
    given = [(spec, value) for level in parsed.options for kind, _, spec, value in level
             if spec is not None]
    for node in parsed.path:
        for option, values, needs, why in node.requires:
            if needs & present:
                continue
            if option is None:
                raise Refusal("option_required", node.rule, "{} needs {}{}".format(
                    node.rule, " or ".join(sorted(needs)), f": {why}" if why else ""))
            for spec, value in given:
                if option in spec.spellings and (values is None or value in values):
                    raise Refusal("option_required", node.rule, "{}{} needs {}{}".format(
                        option, "" if value is None else " " + value, " or ".join(sorted(needs)),
                        f": {why}" if why else ""))


def _operands(leaf, parsed, present):
    spec = leaf.operands
    for when, variant in leaf.variants:
        if when & present:
            spec = variant
            break
    count = len(parsed.operands)
    if leaf.subcommands and not leaf.bare:
        raise Refusal("missing_subcommand", leaf.rule, "{} needs one of: {}".format(leaf.rule, ", ".join(sorted(c.name for c in leaf.children))))
    if count > spec.max:
        raise Refusal("too_many_operands", leaf.rule, "%d operands, at most %d" % (count, spec.max))
    if count < spec.min:
        raise Refusal("too_few_operands", leaf.rule, "%d operands, at least %d" % (count, spec.min))
    if spec.counts is not None and count not in spec.counts:
        raise Refusal("bad_operand_count", leaf.rule, "%d operands; allowed counts: %s"
                      % (count, spec.counts))
    return [spec.checker(i)(word, leaf.rule) for i, word in enumerate(parsed.operands)]


def _emit(command, parsed):
    leaf = parsed.path[-1]
    present = _present(parsed)
    operands = _operands(leaf, parsed, present)
    _requirements(parsed, present)
    problems = []
    executable = command.executable(problems)
    if executable is None:
        raise Refusal("command_not_installed", command.rule, f"no trusted executable of {command.name} is installed ({'; '.join(problems)[:300]})", command=command.name)
    argv = [executable]
    items = []
    for depth, node in enumerate(parsed.path):
        if depth:
            argv.append(node.name)
            items.append(("subcommand", node.name, None))
        argv.extend(node.forced)
        items.extend(("forced", word, None) for word in node.forced)
        if depth == 0 and command.operands_first:
            argv.extend(operands)
            items.extend(("operand", None, word) for word in operands)
        for kind, spelling, spec, value in parsed.options[depth]:
            if kind == "option":
                argv.extend(spec.emit(spelling, value))
            else:
                argv.append(spelling + value if kind == "tagged" else spelling)
            items.append((kind, spelling, value))
        for unless, args in node.defaults:
            if not unless & present:
                argv.extend(args)
                items.extend(("default", word, None) for word in args)
    if not command.operands_first:
        if command.end_of_options and any(word.startswith("-") for word in operands):
            argv.append("--")
        argv.extend(operands)
        items.extend(("operand", None, word) for word in operands)
    return Plan(command, leaf, argv, items)
