"""What the model keeps being refused, and drafts an operator may review: never applied."""

import shlex
from typing import Annotated

import yaml
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from mcp_linux_infra.analysis import analyze
from mcp_linux_infra.learning import RefusedCommand
from mcp_linux_infra.server.calls import current, tool_call
from mcp_linux_infra.server.common import LOCAL_ONLY
from mcp_linux_infra.server.formatting import FormatArg, render

HEADER = """\
# Drafted by mcp-linux-infra from refused commands. REVIEW EVERY LINE before use:
# options that take a value need a value type, and operand types are guesses.
# Add to the inventory (e.g. group_vars/<group>.yml), then run:
#   ansible-playbook ansible/playbooks/deploy-mcp-infra.yml
"""


def _operand_spec(operands: list[list[str]]) -> dict | None:
    words = [w for ws in operands for w in ws]
    if not words:
        return None
    if all(w.startswith("/") for w in words):
        kind = {"type": "read_path"}
    elif all(w.isdigit() for w in words):
        kind = {"type": "int", "min": 0, "max": max(int(w) for w in words) * 10 or 10}
    else:
        kind = {"type": "short_text"}
    return {"rest": kind, "max": max(len(ws) for ws in operands)}


def draft_spec(name: str, commands: list[RefusedCommand]) -> dict:
    """A readonly.json command spec allowing exactly the observed options and operands."""
    options: dict[str, dict | None] = {}
    operands: list[list[str]] = []
    for refused in commands:
        mine = []
        for word in shlex.split(refused.command)[1:]:
            if word.startswith("--") and "=" in word:
                options[word.split("=", 1)[0]] = {"type": "short_text"}
            elif word.startswith("-") and len(word) > 1:
                options.setdefault(word, None)
            else:
                mine.append(word)
        operands.append(mine)
    spec: dict = {"executable": [f"{d}/{name}" for d in ("/usr/bin", "/bin", "/usr/sbin",
                                                          "/sbin")],
                  "description": f"Site addition drafted from {sum(c.count for c in commands)} "
                                 "refusal(s); reviewed by: <operator>"}
    if options:
        spec["options"] = options
    operand = _operand_spec(operands)
    if operand:
        spec["operands"] = operand
    return spec


def suggestions(refused: list[RefusedCommand]) -> dict:
    """Split refused commands into drafts (low risk, unknown to the policy) and the rest."""
    drafts: dict[str, list[RefusedCommand]] = {}
    not_proposed = []
    for item in refused:
        advice = analyze(item.command)
        row = {"command": item.command, "count": item.count, "hosts": item.hosts,
               "risk": advice["risk"], "recommendation": advice["recommendation"],
               "reasons": advice["reasons"][:3]}
        if advice["recommendation"] == "ADD_AUTO" and "unknown_command" in item.reasons:
            drafts.setdefault(advice["binary"], []).append(item)
        else:
            if item.reasons == ["command_not_installed"]:
                row["why_not"] = (f"{item.name} is allowed but not installed on "
                                  f"{', '.join(item.hosts)}")
            elif "destination_not_allowed" in item.reasons:
                row["why_not"] = ("a destination the host's policy does not list; an operator "
                                  "adds names the site trusts to mcp_infra_network_destinations")
            elif "unknown_command" not in item.reasons:
                row["why_not"] = (f"{item.name} is in the policy; this form was refused "
                                  f"({', '.join(item.reasons)}: {item.detail}). Widening an "
                                  "existing command is a manual policy change.")
            else:
                row["why_not"] = f"risk {advice['risk']}: an operator must decide"
            not_proposed.append(row)
    specs = {name: draft_spec(name, items) for name, items in sorted(drafts.items())}
    snippet = HEADER + yaml.safe_dump({"mcp_infra_readonly_extra_commands": specs},
                                      sort_keys=False) if specs else ""
    return {"proposed": [{"command": name, "refusals": sum(i.count for i in items),
                          "hosts": sorted({h for i in items for h in i.hosts}),
                          "examples": [i.command for i in items[:3]]}
                         for name, items in sorted(drafts.items())],
            "ansible_vars_snippet": snippet, "not_proposed": not_proposed}


def register(mcp: MCPServer) -> None:
    @mcp.tool(annotations=LOCAL_ONLY)
    @tool_call
    def get_learning_suggestions(
        ctx: Context,
        min_count: Annotated[int, Field(ge=1, le=10_000,
                                        description="Refused at least this often")] = 3,
        min_age_hours: Annotated[float, Field(ge=0, le=24 * 365, description=(
            "First refused at least this long ago (a need that persists)"))] = 24,
        format: FormatArg = "json",
    ) -> CallToolResult:
        """Low-risk commands the hosts keep refusing, drafted as an Ansible variables
        snippet an operator may review and add. Nothing is ever applied automatically."""
        call = current()
        data = suggestions(call.state.learning.refused(min_count, min_age_hours))
        data.update(min_count=min_count, min_age_hours=min_age_hours)
        return render(data, format)

    @mcp.tool(annotations=LOCAL_ONLY)
    @tool_call
    def get_learning_stats(ctx: Context, format: FormatArg = "json") -> CallToolResult:
        """How many commands were refused, why, on which hosts, and the most frequent."""
        return render(current().state.learning.stats(), format)
