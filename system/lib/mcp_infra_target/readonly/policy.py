"""The read-only policy: load `readonly.json`, check its shape strictly, compile it.

Everything the wrapper allows is data in that file; this module only turns the data into
objects (commands, subcommands, options with compiled value checkers, path rules) and
refuses a document with unknown keys or bad values, so a typo cannot silently widen or
narrow what a host enforces.

Compiling all of it costs more than the rest of a request, so the wrapper compiles only
the command a request names (`load_for_request`); the whole document is validated when it
is deployed (`load`, the role's `validate:`) and whenever `mcp:policy` shows it.
"""

import re

from mcp_infra_target.core import strictjson
from mcp_infra_target.core.digest import sha256
from mcp_infra_target.core.layout import trusted_executable
from mcp_infra_target.readonly.pathrules import PathRules
from mcp_infra_target.readonly.valuetypes import PolicyError, compile_type

MAX_POLICY_BYTES = 4 * 1024 * 1024
SCHEMA = 1
STYLES = ("gnu", "words")
# mcp:session's limits (optional in the document): idle seconds before it ends, requests and
# seconds it may serve in all.
SESSION_LIMITS = {"session_idle_s": 60, "session_max_requests": 10000, "session_max_s": 3600}
# Commands run with RLIMIT_FSIZE 0 (no file may grow); a command whose read-only work needs
# scratch files (apt builds its package cache in an unlinked /tmp file when the system cache is
# stale) may be given a bounded allowance, as data, in its spec.
SCRATCH_MAX = 256 * 1024 * 1024
# A command's spec may cap its private memory (RLIMIT_DATA, soft and hard: heap and private
# writable mappings, not the files it maps), e.g. for commands that compile a client's pattern.
MEMORY_MIN, MEMORY_MAX = 128 * 1024 * 1024, 16 * 1024 * 1024 * 1024
MODES = ("required", "attached", "lookahead", "equals")
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_COMMAND_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")

NODE_KEYS = {"description", "aliases", "options", "operands", "operand_variants",
             "subcommands", "bare", "forced", "defaults", "requires", "timeout_s",
             "output_cap_bytes", "scratch_bytes", "memory_bytes"}
COMMAND_KEYS = NODE_KEYS - {"aliases"} | {"executable", "optional", "style", "permute",
                                          "tagged", "bsd_flags", "numeric_option",
                                          "operands_first", "end_of_options"}
OPERAND_KEYS = {"min", "max", "counts", "items", "rest"}


# Variables that load code or change how a binary reads its input. Plain string tests, not
# a regex: compiling one alternation like this costs about 1 ms on every request.
_ENV_FORBIDDEN_PREFIXES = ("LD_", "PYTHON", "PERL", "RUBY", "MALLOC_")
_ENV_FORBIDDEN_NAMES = frozenset((
    "BASH_ENV", "ENV", "IFS", "SHELLOPTS", "GCONV_PATH", "LOCPATH", "NLSPATH", "HOSTALIASES",
    "RES_OPTIONS", "LOCALDOMAIN", "TMPDIR", "GLIBC_TUNABLES", "EDITOR", "VISUAL", "SHELL"))


def _env_forbidden(name):
    """Whether the policy may not set environment variable `name` for the commands."""
    return (name in _ENV_FORBIDDEN_NAMES or name.startswith(_ENV_FORBIDDEN_PREFIXES)
            or (name.startswith("LESS") and name.endswith("OPEN")))


def _expect(value, kind, where):
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PolicyError("{}: expected {}".format(where, getattr(kind, "__name__", kind)))
    return value


def _keys(obj, allowed, where, required=()):
    _expect(obj, dict, where)
    unknown = set(obj) - set(allowed)
    if unknown:
        raise PolicyError(f"{where}: unknown keys {sorted(unknown)}")
    missing = set(required) - set(obj)
    if missing:
        raise PolicyError(f"{where}: missing keys {sorted(missing)}")


def _strings(value, where):
    _expect(value, list, where)
    for item in value:
        _expect(item, str, where)
    return list(value)


class OptionSpec:
    """One option: its spellings, whether it takes a value and how, and the value's type."""

    def __init__(self, spellings, mode, check, level, type_spec=None):
        self.spellings = spellings
        self.name = spellings[0]
        self.mode = mode
        self.check = check
        self.level = level
        self.type_spec = type_spec  # the policy's words for the value (readonly.describe)

    @property
    def takes_value(self):
        return self.check is not None

    def emit(self, spelling, value):
        """Spell the option so the binary cannot read it another way (see argvparse)."""
        if value is None:
            return [spelling]
        if self.mode == "required":
            return [spelling, value]
        if self.mode == "equals" or spelling.startswith("--"):
            return [spelling + "=" + value]
        return [spelling + value]


class OperandSpec:
    def __init__(self, data, where, context):
        _keys(data, OPERAND_KEYS, where)
        self.items = [compile_type(t, "%s.items[%d]" % (where, i), context)
                      for i, t in enumerate(data.get("items", []))]
        self.rest = compile_type(data["rest"], where + ".rest", context) if "rest" in data else None
        self.min = _expect(data.get("min", 0), int, where + ".min")
        default_max = len(self.items) if self.rest is None else 16
        self.max = _expect(data.get("max", default_max), int, where + ".max")
        self.counts = data.get("counts")
        if self.counts is not None:
            for count in _expect(self.counts, list, where + ".counts"):
                _expect(count, int, where + ".counts")
        if self.rest is None and self.max > len(self.items):
            raise PolicyError(f"{where}: max exceeds the typed items and there is no rest type")

    def checker(self, index):
        return self.items[index] if index < len(self.items) else self.rest


class Node:
    """A command or subcommand: options defined at this level, operands, children."""

    def __init__(self, name, data, where, context, parent, style):
        self.name = name
        self.parent = parent
        self.rule = name if parent is None else parent.rule + " " + name
        self.depth = 0 if parent is None else parent.depth + 1
        self.description = data.get("description", "")
        self.aliases = _strings(data.get("aliases", []), where + ".aliases")
        self.bare = _expect(data.get("bare", "subcommands" not in data), bool, where + ".bare")
        self.forced = _strings(data.get("forced", []), where + ".forced")
        self.timeout_s = data.get("timeout_s")
        self.output_cap_bytes = data.get("output_cap_bytes")
        if self.timeout_s is not None:
            _expect(self.timeout_s, (int, float), where + ".timeout_s")
        if self.output_cap_bytes is not None:
            _expect(self.output_cap_bytes, int, where + ".output_cap_bytes")
        self.scratch_bytes = data.get("scratch_bytes")
        if self.scratch_bytes is not None and not (
                type(self.scratch_bytes) is int and 0 <= self.scratch_bytes <= SCRATCH_MAX):
            raise PolicyError(f"{where}.scratch_bytes: an integer from 0 to {SCRATCH_MAX}")
        self.memory_bytes = data.get("memory_bytes")
        if self.memory_bytes is not None and not (
                type(self.memory_bytes) is int and MEMORY_MIN <= self.memory_bytes <= MEMORY_MAX):
            raise PolicyError(f"{where}.memory_bytes: an integer from {MEMORY_MIN} to {MEMORY_MAX}")
        self.options = {}
        self.option_list = []
        for key, value in _expect(data.get("options", {}), dict, where + ".options").items():
            self._add_option(key, value, f"{where}.options[{key!r}]", context, style)
        self.operands = OperandSpec(data.get("operands", {}), where + ".operands", context)
        self.variants = []
        for index, variant in enumerate(_expect(data.get("operand_variants", []), list,
                                                where + ".operand_variants")):
            vwhere = "%s.operand_variants[%d]" % (where, index)
            _keys(variant, {"when", "operands"}, vwhere, required=("when", "operands"))
            self.variants.append((set(_strings(variant["when"], vwhere + ".when")),
                                  OperandSpec(variant["operands"], vwhere, context)))
        self.defaults = []
        for index, default in enumerate(_expect(data.get("defaults", []), list,
                                                where + ".defaults")):
            dwhere = "%s.defaults[%d]" % (where, index)
            _keys(default, {"unless", "args"}, dwhere, required=("unless", "args"))
            self.defaults.append((set(_strings(default["unless"], dwhere + ".unless")),
                                  _strings(default["args"], dwhere + ".args")))
        # An option (or a value of it) that is only allowed together with another option:
        # {"needs": [spellings], "option": spelling?, "values": [values]?}; without "option"
        # the node itself needs one of them (docker inspect needs --format).
        self.requires = []
        for index, require in enumerate(_expect(data.get("requires", []), list,
                                                where + ".requires")):
            rwhere = f"{where}.requires[{index}]"
            _keys(require, {"needs", "option", "values", "why"}, rwhere, required=("needs",))
            values = require.get("values")
            option = require.get("option")
            node = self
            while option is not None and node is not None and option not in node.options:
                node = node.parent
            if option is not None and node is None:
                raise PolicyError(f"{rwhere}.option: {option!r} is not an option here")
            self.requires.append((option,
                                  None if values is None else set(_strings(values, rwhere)),
                                  set(_strings(require["needs"], rwhere + ".needs")),
                                  _expect(require.get("why", ""), str, rwhere + ".why")))
        self.subcommands = {}
        self.children = []
        for sub_name, sub_data in _expect(data.get("subcommands", {}), dict,
                                          where + ".subcommands").items():
            swhere = f"{where}.subcommands[{sub_name!r}]"
            _keys(sub_data, NODE_KEYS, swhere)
            child = Node(sub_name, sub_data, swhere, context, self, style)
            self.children.append(child)
            for word in [sub_name] + child.aliases:
                if word in self.subcommands:
                    raise PolicyError(f"{swhere}: subcommand word {word!r} defined twice")
                self.subcommands[word] = child

    def _add_option(self, key, value, where, context, style):
        spellings = key.split()
        if not spellings:
            raise PolicyError(f"{where}: empty option key")
        for spelling in spellings:
            if "=" in spelling or not spelling.isprintable() or spelling in self.options:
                raise PolicyError(f"{where}: bad or repeated spelling {spelling!r}")
            if style == "gnu" and spelling.startswith("-") and not (
                    re.fullmatch(r"-[A-Za-z0-9?]", spelling)
                    or re.fullmatch(r"--[A-Za-z0-9][A-Za-z0-9-]+", spelling)):
                raise PolicyError(f"{where}: {spelling!r} is neither -x nor --long")
        if value is None:
            spec = OptionSpec(spellings, None, None, self.depth)
        else:
            _expect(value, dict, where)
            type_spec = dict(value)
            mode = type_spec.pop("mode", "required")
            if mode not in MODES:
                raise PolicyError(f"{where}: mode must be one of {MODES}")
            spec = OptionSpec(spellings, mode, compile_type(type_spec, where, context), self.depth,
                              type_spec)
        self.option_list.append(spec)
        for spelling in spellings:
            self.options[spelling] = spec

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


class Command(Node):
    """A top-level command: a Node plus how to find and parse its binary."""

    def __init__(self, name, plugin, data, where, context):
        _keys(data, COMMAND_KEYS, where, required=("executable",))
        if not _COMMAND_NAME.fullmatch(name):
            raise PolicyError(f"{where}: bad command name")
        style = data.get("style", "gnu")
        if style not in STYLES:
            raise PolicyError(f"{where}: style must be one of {STYLES}")
        self.style = style
        self.plugin = plugin
        Node.__init__(self, name, data, where, context, None, style)
        self.rule = plugin + "/" + name
        for node in self.walk():
            if node is not self:
                node.rule = self.rule + node.rule[len(name):]
        self.executables = _strings(data["executable"], where + ".executable")
        for candidate in self.executables:
            if not candidate.startswith("/") or "/../" in candidate or "/./" in candidate:
                raise PolicyError(f"{where}: executables must be absolute, normal paths")
        self.optional = _expect(data.get("optional", False), bool, where + ".optional")
        self.permute = _expect(data.get("permute", style == "gnu"), bool, where + ".permute")
        self.end_of_options = _expect(data.get("end_of_options", style == "gnu"), bool,
                                      where + ".end_of_options")
        self.operands_first = _expect(data.get("operands_first", False), bool,
                                      where + ".operands_first")
        self.bsd_flags = _expect(data.get("bsd_flags", ""), str, where + ".bsd_flags")
        self.numeric_option = data.get("numeric_option")
        if self.numeric_option is not None and self.numeric_option not in self.options:
            raise PolicyError(f"{where}: numeric_option must name a root option")
        self.tagged = {}
        for tag, type_spec in _expect(data.get("tagged", {}), dict, where + ".tagged").items():
            if len(tag) != 1 or tag.isalnum() or tag == "-":
                raise PolicyError(f"{where}: a tag is one punctuation character")
            self.tagged[tag] = compile_type(type_spec, f"{where}.tagged[{tag!r}]", context)

    def executable(self, problems: "list | None" = None) -> "str | None":
        """The first candidate that is an executable regular file whose whole path, symlinks
        and their targets included, is root's alone (core.layout.trusted_executable)."""
        return trusted_executable(self.executables, problems)

    def forms(self) -> list:
        """Command forms this command offers: its leaf nodes (`ip route get`, `uptime`)."""
        return [node for node in self.walk() if not node.subcommands]


class _NamedTypes:
    """The policy's `types`, each compiled on first use (a request needs only its command's).

    A type may use any other type, whatever their order in the document: tools that sort
    JSON keys (Ansible's to_nice_json, jq -S) must not break a policy. A cycle is refused.
    """

    def __init__(self, specs, paths, network):
        self.specs = specs
        self.paths = paths
        self.network = network
        self.compiled = {}
        self.compiling = []

    def context(self):
        return {"paths": self.paths, "named": _Visible(self), "network": self.network}

    def get(self, name):
        if name not in self.compiled:
            if name in self.compiling:
                chain = " -> ".join(self.compiling[self.compiling.index(name):] + [name])
                raise PolicyError(f"types.{name}: a type cannot contain itself ({chain})")
            self.compiling.append(name)
            try:
                self.compiled[name] = compile_type(self.specs[name], "types." + name,
                                                   self.context())
            finally:
                self.compiling.pop()
        return self.compiled[name]


class _Visible:
    """The `named` mapping compile_type consults: every type the policy defines."""

    def __init__(self, types):
        self.types = types

    def __contains__(self, name):
        return name in self.types.specs

    def __getitem__(self, name):
        return self.types.get(name)


class Policy:
    """The policy document: its top level checked at once, each command compiled on first use.

    A request compiles only the command it names (and the types that command uses); a spec
    that fails is refused, never half-applied. `validate` compiles everything: the deploy-time
    check (`load`), `mcp:policy` and the tests use it, so a fault anywhere is still caught.
    """

    def __init__(self, document, digest):
        self.document = document
        self.sha256 = digest
        _keys(document, {"schema", "description", "defaults", "limits", "environment",
                         "paths", "network", "types", "plugins"}, "policy",
              required=("schema", "defaults", "limits", "environment", "paths", "plugins"))
        if document["schema"] != SCHEMA:
            raise PolicyError("policy: schema must be %d" % SCHEMA)
        defaults = document["defaults"]
        _keys(defaults, {"timeout_s", "output_cap_bytes", "kill_grace_s"}, "policy.defaults",
              required=("timeout_s", "output_cap_bytes", "kill_grace_s"))
        self.timeout_s = _expect(defaults["timeout_s"], (int, float), "defaults.timeout_s")
        self.output_cap_bytes = _expect(defaults["output_cap_bytes"], int, "defaults.output_cap")
        self.kill_grace_s = _expect(defaults["kill_grace_s"], (int, float), "defaults.kill_grace_s")
        self.scratch_bytes = 0
        self.memory_bytes = None
        limit_names = ("request_max_bytes", "max_tokens", "batch_max_commands",
                       "batch_stdin_max_bytes", "batch_stdin_timeout_s", "batch_timeout_s",
                       "batch_output_cap_bytes", "batch_parallel")
        _keys(document["limits"], limit_names + tuple(SESSION_LIMITS), "policy.limits",
              required=limit_names)
        self.limits = {}
        for name in limit_names + tuple(SESSION_LIMITS):
            value = _expect(document["limits"].get(name, SESSION_LIMITS.get(name)), (int, float),
                            "limits." + name)
            if value <= 0:
                raise PolicyError(f"limits.{name} must be positive")
            self.limits[name] = value
        self.environment = self._environment(document["environment"])
        paths = document["paths"]
        _keys(paths, {"read_roots", "list_roots", "deny", "deny_names"}, "policy.paths",
              required=("read_roots", "list_roots", "deny", "deny_names"))
        for key in ("read_roots", "list_roots", "deny"):
            for pattern in _strings(paths[key], "paths." + key):
                if not pattern.startswith("/"):
                    raise PolicyError(f"paths.{key}: {pattern!r} is not absolute")
        self.paths = PathRules(paths["read_roots"], paths["list_roots"], paths["deny"],
                               _strings(paths["deny_names"], "paths.deny_names"))
        network = document.get("network", {})
        _keys(network, {"destinations"}, "policy.network")
        self._destinations = _strings(network.get("destinations", []), "network.destinations")
        self._compiled_destinations = None
        self.types = _NamedTypes(_expect(document.get("types", {}), dict, "policy.types"),
                                 self.paths, self.destinations)
        self.sources = {}
        for plugin, pdata in _expect(document["plugins"], dict, "policy.plugins").items():
            _keys(pdata, {"description", "commands"}, "plugins." + plugin, required=("commands",))
            for name, cdata in _expect(pdata["commands"], dict, plugin + ".commands").items():
                where = f"plugins.{plugin}.commands.{name}"
                if name in self.sources:
                    raise PolicyError(f"{where}: command defined in two plugins")
                self.sources[name] = (plugin, cdata, where)
        self.compiled = {}

    def destinations(self):
        """network.destinations, compiled on first use (only commands that reach other
        hosts need it)."""
        if self._compiled_destinations is None:
            from mcp_infra_target.readonly.destinations import Destinations
            self._compiled_destinations = Destinations(self._destinations,
                                                       "network.destinations", PolicyError)
        return self._compiled_destinations

    @staticmethod
    def _environment(env):
        _expect(env, dict, "policy.environment")
        for name, value in env.items():
            if not _ENV_NAME.fullmatch(name) or _env_forbidden(name):
                raise PolicyError(f"environment: {name!r} may not be set")
            _expect(value, str, "environment." + name)
        if not env.get("PATH", "").startswith("/"):
            raise PolicyError("environment: PATH must be set to absolute directories")
        return dict(env)

    def command(self, name: str) -> "Command | None":
        """The compiled command `name`, or None if the policy has none; PolicyError if its
        spec (or a type it uses) is broken."""
        if name not in self.compiled:
            if name not in self.sources:
                return None
            plugin, data, where = self.sources[name]
            self.compiled[name] = Command(name, plugin, data, where, self.types.context())
        return self.compiled[name]

    @property
    def commands(self):
        """Every command, compiled (PolicyError if any is broken)."""
        return {name: self.command(name) for name in self.sources}

    def validate(self) -> None:
        """Compile the whole policy, every named type and command, raising the first fault."""
        self.destinations()
        for name in self.types.specs:
            self.types.get(name)
        for name in self.sources:
            self.command(name)

    def forms(self):
        return [form for command in self.commands.values() for form in command.forms()]


def load_for_request(path: str) -> Policy:
    """Read the policy file at `path` and check its top level; commands compile on first use
    (`Policy.command`). Trust of the file is checked by the caller."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_POLICY_BYTES + 1)
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError("policy file larger than %d bytes" % MAX_POLICY_BYTES)
    try:
        document = strictjson.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise PolicyError(f"policy is not strict JSON: {error}")
    return Policy(document, sha256(data).hexdigest())


def load(path: str) -> Policy:
    """Read and compile the whole policy at `path`, raising PolicyError on any fault: the
    deploy-time check (the role's `validate:`), also used by tools and tests."""
    policy = load_for_request(path)
    policy.validate()
    return policy
