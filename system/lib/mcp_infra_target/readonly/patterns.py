"""What a client-chosen regular expression may cost, and which fields a template may name.

Patterns (kind `pattern`): a client's regular expression goes to grep, journalctl -g, find
-regex, pgrep, sysctl -r. Counted repetition is written out by these engines: GNU grep's
`(.{1,1000}){1,10}` took 20 s of CPU and 350 MB on a 1 MB file before the wrapper's timeout
(docs/SECURITY.md has the measurements), and backtracking engines (PCRE2: journalctl -g)
explode on nested or ambiguous quantifiers such as `(a+)+` or `(a|aa)+`. So a pattern is
scanned, without compiling it, for three numbers, and refused beyond the type's bounds:

- nesting: the depth of quantifiers, `a+` is 1, `((a+)+)` is 2; in PCRE a repeated group
  holding an alternation counts one more, `(a|aa)+` is 2;
- repeat product: the product of counted repetition bounds along one nesting chain,
  `(a{1,10}){1,20}` is 200;
- expansion: the pattern's size with every counted repetition written out.

The scan is conservative: a pattern is read as every engine that may receive it would read
it (POSIX ERE with `(` groups and BRE with `\\(` groups for syntax "regex"; PCRE for syntax
"pcre"), and the larger cost counts. Backreferences (`\\1`, PCRE `\\g`, `\\k`), which make
every engine backtrack, and PCRE's extensions other than `(?:` and inline flags are refused.

Templates (kind `format`): `docker ps --format '{{.Names}}'`, `dpkg-query -f '${Package}'`,
`stat -c '%n %s'` name fields; every field named must be in the type's allow-list, and
nothing else may be said in the template language (no functions but `json`, no pipelines,
no ranges).
"""

from mcp_infra_target.core.refusal import Refusal

MAX_BOUND_DIGITS = 6


class PatternCost:
    """Nesting, repeat product and expansion of one pattern (the maximum over dialects)."""

    def __init__(self, nesting=0, product=1, expansion=0):
        self.nesting = nesting
        self.product = product
        self.expansion = expansion

    def merge(self, other):
        self.nesting = max(self.nesting, other.nesting)
        self.product = max(self.product, other.product)
        self.expansion = max(self.expansion, other.expansion)


class PatternError(ValueError):
    """The pattern uses a construct that is not offered (the message says which)."""


class _Item:
    __slots__ = ("alternation", "depth", "product", "size")

    def __init__(self, depth=0, product=1, size=1, alternation=False):
        self.depth, self.product, self.size, self.alternation = depth, product, size, alternation


class _Frame:
    """A group being read: the items folded so far and the last one, which a quantifier may
    still change."""

    def __init__(self):
        self.depth = 0
        self.product = 1
        self.size = 0
        self.alternation = False
        self.last = None

    def push(self, item):
        self.fold()
        self.last = item

    def fold(self):
        if self.last is not None:
            item = self.last
            self.alternation = self.alternation or item.alternation
            self.depth = max(self.depth, item.depth)
            self.product = max(self.product, item.product)
            self.size += item.size
            self.last = None

    def as_item(self):
        self.fold()
        return _Item(self.depth, self.product, self.size, self.alternation)


def _interval(text, start, close):
    """A counted repetition `{m}`, `{m,}`, `{m,n}`, `{,n}` at text[start] == '{' (close is
    '}' or '\\}'): (bound, unbounded, end index) or None if it is a literal brace."""
    end = text.find(close, start + 1)
    if end < 0:
        return None
    body = text[start + 1:end]
    low, comma, high = body.partition(",")
    if not (low or high) or not (low.isdigit() or not low) or not (high.isdigit() or not high):
        return None
    if not body.replace(",", "").isascii() or body.count(",") > 1:
        return None
    if len(low) > MAX_BOUND_DIGITS or len(high) > MAX_BOUND_DIGITS:
        return (10 ** MAX_BOUND_DIGITS, bool(comma and not high), end + len(close))
    bound = max(int(low or 0), int(high or 0), 1)
    return (bound, bool(comma and not high), end + len(close))


def _skip_posix_bracket(text, i):
    """Index after the POSIX bracket expression opening at text[i] == '['."""
    j = i + 1
    if j < len(text) and text[j] == "^":
        j += 1
    if j < len(text) and text[j] == "]":
        j += 1
    while j < len(text):
        char = text[j]
        if char == "[" and j + 1 < len(text) and text[j + 1] in ":=.":
            end = text.find(text[j + 1] + "]", j + 2)
            if end < 0:
                raise PatternError(f"unterminated [{text[j + 1]} class")
            j = end + 2
            continue
        if char == "]":
            return j + 1
        j += 1
    raise PatternError("unterminated bracket expression [")


def _skip_pcre_escape(text, i):
    """Index after the PCRE escape at text[i] == '\\' (refusing backreferences)."""
    if i + 1 >= len(text):
        return i + 1
    char = text[i + 1]
    if char in "123456789":
        raise PatternError(f"backreferences (\\{char}) are not offered")
    if char in "gk":
        raise PatternError(f"backreferences and subroutine calls (\\{char}) are not offered")
    if char == "Q":
        end = text.find("\\E", i + 2)
        return len(text) if end < 0 else end + 2
    if char == "c":
        return min(i + 3, len(text))
    if char in "xopPN" and i + 2 < len(text) and text[i + 2] == "{":
        end = text.find("}", i + 3)
        if end < 0:
            raise PatternError(f"unterminated \\{char}{{...}}")
        return end + 1
    return i + 2


def _skip_pcre_bracket(text, i):
    j = i + 1
    if j < len(text) and text[j] == "^":
        j += 1
    if j < len(text) and text[j] == "]":
        j += 1
    while j < len(text):
        char = text[j]
        if char == "\\":
            j = _skip_pcre_escape(text, j)
            continue
        if char == "[" and j + 1 < len(text) and text[j + 1] in ":=.":
            end = text.find(text[j + 1] + "]", j + 2)
            if end < 0:
                raise PatternError(f"unterminated [{text[j + 1]} class")
            j = end + 2
            continue
        if char == "]":
            return j + 1
        j += 1
    raise PatternError("unterminated character class [")


def _pcre_group_open(text, i):
    """What follows '(' in PCRE: (index after it, whether it opens a group); only plain and
    (?: groups and inline flags (?i) are offered."""
    rest = text[i + 1:i + 2]
    if rest == "*":
        raise PatternError("PCRE verbs (*...) are not offered")
    if rest != "?":
        return i + 1, True
    j = i + 2
    while j < len(text) and text[j] in "imsxn-^":
        j += 1
    if j < len(text) and text[j] == ":":
        return j + 1, True
    if j < len(text) and text[j] == ")" and j > i + 2:
        return j + 1, False
    raise PatternError(f"PCRE construct {text[i:i + 4]!r} is not offered (only (?: and inline "
                       "flags)")


def _scan(text, dialect):
    """The cost of `text` read in one dialect: "ere" and "pcre" group with ( ), "bre" with
    \\( \\); all of them count {m,n}, \\{m,n\\}, *, +, ?, \\+, \\? as quantifiers."""
    frames = [_Frame()]
    i, n = 0, len(text)
    pcre = dialect == "pcre"
    group_open, group_close = ("\\(", "\\)") if dialect == "bre" else ("(", ")")

    def quantify(bound, counted, repeats):
        frame = frames[-1]
        item = frame.last
        if item is None:  # nothing to repeat: a literal in POSIX, an error in PCRE
            frame.push(_Item())
            return
        item.depth += 1 + (1 if pcre and repeats and item.alternation else 0)
        item.alternation = False
        if counted:
            item.product *= bound
            item.size *= bound

    while i < n:
        char = text[i]
        if text.startswith(group_open, i):
            i, group = _pcre_group_open(text, i) if pcre else (i + len(group_open), True)
            if group:  # inline flags (?i) are not a group
                frames.append(_Frame())
            continue
        if text.startswith(group_close, i) and len(frames) > 1:
            item = frames.pop().as_item()
            frames[-1].push(item)
            i += len(group_close)
            continue
        if text.startswith("\\|", i) or char == "|":
            frames[-1].fold()
            frames[-1].alternation = True
            i += 2 if char == "\\" else 1
            continue
        if char == "{" or text.startswith("\\{", i):
            close = "}" if char == "{" else "\\}"
            found = _interval(text, i + (0 if char == "{" else 1), close)
            if found is not None:
                bound, unbounded, end = found
                quantify(bound, True, unbounded or bound > 1)
                i = end
                if pcre and i < n and text[i] in "?+":
                    i += 1
                continue
        if char in "*+?" or (char == "\\" and text[i + 1:i + 2] in ("+", "?")):
            quantify(1, False, text[i + (char == "\\")] != "?")
            i += 1 if char != "\\" else 2
            if pcre and i < n and text[i] in "?+":
                i += 1
            continue
        if char == "[":
            i = _skip_pcre_bracket(text, i) if pcre else _skip_posix_bracket(text, i)
            frames[-1].push(_Item())
            continue
        if char == "\\":
            if pcre:
                i = _skip_pcre_escape(text, i)
            else:
                if text[i + 1:i + 2] in tuple("123456789"):
                    raise PatternError(f"backreferences (\\{text[i + 1]}) are not offered")
                i += 2
            frames[-1].push(_Item())
            continue
        frames[-1].push(_Item())
        i += 1
    while len(frames) > 1:  # unclosed: an error for the engine; closed here to count it
        item = frames.pop().as_item()
        frames[-1].push(item)
    top = frames[0].as_item()
    return PatternCost(top.depth, top.product, top.size)


DIALECTS = {"regex": ("ere", "bre"), "pcre": ("pcre",)}


def regex_cost(text: str, syntax: str) -> PatternCost:
    """The largest cost of `text` over the dialects of `syntax`; PatternError if refused."""
    cost = PatternCost()
    for dialect in DIALECTS[syntax]:
        cost.merge(_scan(text, dialect))
    return cost


def pattern_checker(spec: dict, where: str, error: type):
    """Compile a `pattern` type: syntax regex|pcre, max_len, max_nesting, max_repeat_product,
    max_expansion."""
    syntax = spec.get("syntax", "regex")
    if syntax not in DIALECTS:
        raise error(f"{where}: syntax must be one of {sorted(DIALECTS)}")
    limits = {}
    for key, default in (("max_len", 1024), ("max_nesting", 2 if syntax == "regex" else 1),
                         ("max_repeat_product", 128), ("max_expansion", 1024)):
        value = spec.get(key, default)
        if type(value) is not int or value < (0 if key == "max_nesting" else 1):
            raise error(f"{where}: {key} must be a positive integer")
        limits[key] = value

    def check(value, rule):
        if not value or len(value) > limits["max_len"] or not value.isprintable():
            raise Refusal("bad_value", rule,
                          f"a pattern is 1..{limits['max_len']} printable characters")
        try:
            cost = regex_cost(value, syntax)
        except PatternError as refused:
            raise Refusal("bad_value", rule, f"pattern {value[:80]!r}: {refused}")
        for key, got, what in (("max_nesting", cost.nesting, "nested or ambiguous repetition"),
                               ("max_repeat_product", cost.product,
                                "product of counted repetitions"),
                               ("max_expansion", cost.expansion,
                                "size with counted repetitions written out")):
            if got > limits[key]:
                raise Refusal("bad_value", rule, f"pattern {value[:80]!r}: {what} {got}, at most "
                              f"{limits[key]} (what a pattern may cost the host is bounded)")
        return value
    return check


# Templates ---------------------------------------------------------------------------------

def _go_template(value, fields):
    """Literal text and actions `{{.A.B}}` / `{{json .A.B}}` with listed paths; at least one."""
    actions = 0
    i = 0
    while i < len(value):
        start = value.find("{{", i)
        literal = value[i:] if start < 0 else value[i:start]
        if "{" in literal or "}" in literal:
            return "braces outside {{...}} actions"
        if start < 0:
            break
        end = value.find("}}", start + 2)
        if end < 0:
            return "unterminated {{"
        words = value[start + 2:end].split()
        if len(words) == 2 and words[0] == "json":
            words = words[1:]
        if len(words) != 1 or words[0] not in fields:
            action = value[start + 2:end].strip()[:60]
            return f"{{{{{action}}}}} is not an allowed field (allowed: {', '.join(sorted(fields))})"
        actions += 1
        i = end + 2
    if not actions:
        return "a template names at least one field as {{.Field}}"
    return None


def _dollar_template(value, fields):
    """dpkg-query: literal text and ${Field} or ${Field;width} with listed fields."""
    i = 0
    while i < len(value):
        start = value.find("${", i)
        literal = value[i:] if start < 0 else value[i:start]
        if "$" in literal or "{" in literal or "}" in literal:
            return "$, { and } only as ${Field}"
        if start < 0:
            return None
        end = value.find("}", start + 2)
        if end < 0:
            return "unterminated ${"
        name, semicolon, width = value[start + 2:end].partition(";")
        if name not in fields:
            return f"${{{name[:60]}}} is not an allowed field (allowed: {', '.join(sorted(fields))})"
        if semicolon and not (width.lstrip("-").isdigit() and len(width) <= 4):
            return "a width is ${Field;N} with N a number"
        i = end + 1
    return None


_PERCENT_FLAGS = "-_0^#+ '"


def _percent_template(value, fields):
    """printf-like: literal text and %[flags][width][.precision]DIRECTIVE with listed
    directives (the longest listed one that fits), %% for a percent sign."""
    longest = max(len(f) for f in fields)
    i = 0
    while i < len(value):
        if value[i] != "%":
            i += 1
            continue
        j = i + 1
        if value[j:j + 1] == "%":
            i = j + 1
            continue
        while j < len(value) and value[j] in _PERCENT_FLAGS:
            j += 1
        digits = j
        while j < len(value) and value[j].isdigit() and j - digits < 4:
            j += 1
        if value[j:j + 1] == ".":
            j += 1
            digits = j
            while j < len(value) and value[j].isdigit() and j - digits < 4:
                j += 1
        for size in range(longest, 0, -1):
            if value[j:j + size] in fields:
                i = j + size
                break
        else:
            listed = " ".join("%" + f for f in sorted(fields))
            return f"%{value[j:j + 2]} is not an allowed directive (allowed: {listed})"
    return None


TEMPLATES = {"go": _go_template, "dollar": _dollar_template, "percent": _percent_template}


def format_checker(spec: dict, where: str, error: type):
    """Compile a `format` type: syntax go|dollar|percent, fields (the allow-list), max_len."""
    syntax = spec.get("syntax")
    if syntax not in TEMPLATES:
        raise error(f"{where}: syntax must be one of {sorted(TEMPLATES)}")
    fields = spec.get("fields")
    if not isinstance(fields, list) or not fields or not all(
            isinstance(f, str) and f and f.isprintable() for f in fields):
        raise error(f"{where}: fields must be a non-empty list of field names")
    if syntax == "go" and not all(f.startswith(".") and "{" not in f and "}" not in f
                                  and " " not in f for f in fields):
        raise error(f"{where}: go template fields are paths like .State.Status")
    fields = frozenset(fields)
    max_len = spec.get("max_len", 512)
    scan = TEMPLATES[syntax]

    def check(value, rule):
        if not value or len(value) > max_len or not value.isprintable():
            raise Refusal("bad_value", rule, f"a template is 1..{max_len} printable characters")
        problem = scan(value, fields)
        if problem:
            raise Refusal("bad_value", rule, f"template {value[:80]!r}: {problem}")
        return value
    return check
