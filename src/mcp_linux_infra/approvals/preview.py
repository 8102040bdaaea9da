"""What an action would find, seen through the read tier before anyone approves it.

The action's own check runs as root inside pra-run, only with a signature. Where a
read-only command shows the same state (data/action_previews.json), the proposal carries
its answer; otherwise it says plainly that there is no preview.
"""

import json
from importlib import resources
from typing import Any

from mcp_linux_infra.readonly.protocol import Target

_DATA = json.loads(resources.files("mcp_linux_infra.data").joinpath(
    "action_previews.json").read_text())
PREVIEWS: dict[str, dict[str, Any]] = {k: v for k, v in _DATA.items() if not k.startswith("_")}
OUTPUT_CHARS = 2000


def preview(target: Target, action: str, params: dict[str, str]) -> dict[str, Any]:
    """The preview of `action` with (validated) `params` on the target's read tier."""
    spec = PREVIEWS.get(action)
    if spec is None:
        return {"available": False,
                "why": f"no read-only equivalent of {action}'s check is known"}
    words = [word.format(**params) for word in spec["command"]]
    out = target.run(words)
    data: dict[str, Any] = {"available": True, "command": out.command,
                            "explains": spec["explains"]}
    if out.status != "ok":
        reason = out.refusal.reason if out.refusal else out.stderr.strip()[:200]
        return {**data, "available": False, "why": f"the read tier answered {out.status}: "
                                                   f"{reason}"}
    text = out.stdout.strip()
    data.update(exit_code=out.exit_code, output=text[:OUTPUT_CHARS])
    if "satisfied_stdout" in spec:
        first = text.splitlines()[0] if text else ""
        data["prediction"] = ("already satisfied: the target will find nothing to do"
                              if first in spec["satisfied_stdout"]
                              else "not satisfied: the action will run")
    return data
