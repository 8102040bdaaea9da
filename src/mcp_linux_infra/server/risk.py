"""Risk of a command line, from data (data/command_risk.json): which binaries and options
read, follow, page, reach the network, write, signal, execute or change user.

Advice only: the target's policy decides. This is what learning suggestions and
command_catalog(mode=risk) use to say whether a refused command is worth an operator's time.
"""

import json
import re
import shlex
from functools import lru_cache
from importlib import resources

RISKS = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
_CAN = {
    "read": "read (inspect state)", "follow": "run forever (it follows)",
    "page": "open a pager or an editor", "network": "reach other hosts",
    "write": "change files or system state", "signal": "stop or signal processes",
    "execute": "run other programs or code", "privilege": "act as another user",
}


@lru_cache(maxsize=1)
def table() -> dict:
    return json.loads(resources.files("mcp_linux_infra.data").joinpath(
        "command_risk.json").read_text())


def _binary(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _entry(name: str) -> dict | None:
    binaries = table()["binaries"]
    return binaries.get(name) or binaries.get(re.sub(r"[0-9.]+$", "", name))


def _option_spellings(word: str) -> list[str]:
    """`--x=1` -> [--x]; `-xvf` -> [-xvf, -x, -v, -f] (a cluster, or a one-dash long name)."""
    if word.startswith("--"):
        return [word.split("=", 1)[0]]
    return [word, *(f"-{c}" for c in word[1:] if c.isalpha())]


def _shell_syntax(command: str) -> list[str]:
    found = []
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        tokens = list(lexer)
    except ValueError:
        tokens = []
    for symbol, meaning in table()["shell_syntax"].items():
        if symbol in tokens or (symbol in ("$(", "`") and symbol in command):
            found.append(f"`{symbol}` is {meaning}")
    return found


def analyze(command: str) -> dict:
    """risk, category, recommendation, effects and the reasons, for one command line."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        return {"command": command, "binary": None, "category": None, "risk": "MEDIUM",
                "recommendation": "ADD_MANUAL", "effects": [],
                "reasons": [f"cannot be split into words: {exc}"]}
    if not words:
        return {"command": command, "binary": None, "category": None, "risk": "LOW",
                "recommendation": "ADD_MANUAL", "effects": [], "reasons": ["empty command"]}
    name = _binary(words[0])
    entry = _entry(name)
    reasons: list[str] = []
    effects: dict[str, str] = {}
    if entry is None:
        reasons.append(f"{name} is not in the risk table: review what its options can do")
    else:
        for effect in entry.get("always", []):
            effects.setdefault(effect, f"{name} can {_CAN[effect]}")
        options = entry.get("options", {})
        subcommands = entry.get("subcommands", {})
        operands = []
        for word in words[1:]:
            if word.startswith("-") and len(word) > 1:
                for spelling in _option_spellings(word):
                    for effect in options.get(spelling, []):
                        effects.setdefault(effect, f"`{spelling}` lets {name} {_CAN[effect]}")
            else:
                operands.append(word)
        for word in operands[:2]:
            for effect in subcommands.get(word, []):
                effects.setdefault(effect, f"`{name} {word}` can {_CAN[effect]}")
        if operands and "operands_effect" in entry:
            for effect in entry["operands_effect"]:
                effects.setdefault(effect, f"{name} with operands can {_CAN[effect]}")
        if entry.get("reason"):
            reasons.append(entry["reason"])
    syntax = _shell_syntax(command)
    if syntax:
        reasons.append("shell syntax (" + "; ".join(syntax) + "): targets run no shell, so "
                       "these would be plain arguments; send each command separately")
        if any(s.startswith("`>`") for s in syntax):
            effects.setdefault("write", "a redirection writes a file")
    risk_of = table()["effect_risk"]
    risk = max((risk_of[e] for e in effects), key=RISKS.index, default="MEDIUM")
    if entry is None or syntax:
        risk = max(risk, "MEDIUM", key=RISKS.index)
    if len(effects) > 1:
        effects.pop("read", None)  # "it can read" says nothing next to what else it can do
    ranked = sorted(effects, key=lambda e: RISKS.index(risk_of[e]), reverse=True)
    return {"command": command, "binary": name,
            "category": entry.get("category") if entry else None, "risk": risk,
            "recommendation": table()["risk_recommendation"][risk], "effects": ranked,
            "reasons": [effects[e] for e in ranked] + reasons}
