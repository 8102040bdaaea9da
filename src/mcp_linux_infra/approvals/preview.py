"""What an action would find, seen through the read tier before anyone approves it.

The action's own check runs as root inside pra-run, only with a signature. Where the host's
catalog declares a read-only command that shows the same state (the action's `preview`, as
`pra-exec list` answers it: `command` words, literal or a whole-word `{param}`, what it
`explains` and, where the command decides exactly as the check does, the first output lines
that mean `satisfied_stdout`), the proposal carries its answer; otherwise it says plainly
that the host's catalog declares no preview for the action.
"""

import re
from typing import Any

from mcp_linux_infra.readonly.protocol import Target

OUTPUT_CHARS = 2000
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]{0,63})\}")


def preview(target: Target, action: str, spec: dict[str, Any],
            params: dict[str, str]) -> dict[str, Any]:
    """The preview of `action` (its catalog entry `spec`) with validated `params`, on the
    target's read tier."""
    declared = spec.get("preview")
    if declared is None:
        return {"available": False,
                "why": f"{target.host.name}'s catalog declares no preview for {action}"}
    words = preview_argv(declared, params)
    if words is None:
        return {"available": False, "why": f"{target.host.name}'s catalog declares a preview "
                                           f"for {action} this client cannot read"}
    out = target.run(words)
    data: dict[str, Any] = {"available": True, "command": out.command,
                            "explains": declared.get("explains")}
    if out.status != "ok":
        reason = out.refusal.reason if out.refusal else out.stderr.strip()[:200]
        return {**data, "available": False, "why": f"the read tier answered {out.status}: "
                                                   f"{reason}"}
    text = out.stdout.strip()
    data.update(exit_code=out.exit_code, output=text[:OUTPUT_CHARS])
    if "satisfied_stdout" in declared:
        first = text.splitlines()[0] if text else ""
        data["prediction"] = ("already satisfied: the target will find nothing to do"
                              if first in declared["satisfied_stdout"]
                              else "not satisfied: the action will run")
    return data


def preview_argv(declared: Any, params: dict[str, str]) -> list[str] | None:
    """The preview's argv with the params filled in, or None if it is not the documented
    shape (a list of words, each a placeholder naming a param, or a literal)."""
    command = declared.get("command") if isinstance(declared, dict) else None
    if not isinstance(command, list) or not command or not all(
            isinstance(w, str) for w in command):
        return None
    words = []
    for word in command:
        match = PLACEHOLDER.fullmatch(word)
        if match and match.group(1) not in params:
            return None
        words.append(params[match.group(1)] if match else word)
    return words
