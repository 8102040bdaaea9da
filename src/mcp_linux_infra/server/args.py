"""The tools' argument types, as MCP clients see them (JSON schema from pydantic), each
defined once here and shared by every tool that takes it; and the one check a tool makes
itself, of free text kept for a person (`screened`). What a host accepts as a value is the
host's own decision: a type here only bounds a value and says what it is."""

from typing import Annotated, Literal

from pydantic import Field

from mcp_linux_infra.display import free_text_refusal, unprintable
from mcp_linux_infra.server.refused import Refused

_NAME = {"min_length": 1, "max_length": 253}
# An inventory host: the instructions say so once; a group is said where it is allowed.
HostArg = Annotated[str, Field(**_NAME)]
GroupArg = Annotated[str, Field(**_NAME, description="Inventory host or group")]
CommandArg = Annotated[str, Field(min_length=1, max_length=4096,
                                  description="One command line, no shell (no pipes, `;`)")]
Format = Literal["json", "toon", "text"]
# One default for every tool; the instructions (app.INSTRUCTIONS) say what each form sends.
DEFAULT_FORMAT: Format = "json"
FormatArg = Annotated[Format, Field(description="toon, text: data also as text")]
Since = Annotated[str, Field(pattern=r"^[A-Za-z0-9 :.,+@_/-]{1,64}$",
                             description="e.g. -1h, today")]
# Where a tool puts a value as a command's operand, the value is the client's to shape: one
# printable word that cannot be read as an option (no control character, no leading '-').
# Which values a host accepts there is the host's own check (its policy's value types), and
# its refusal reaches the model as a ToolError with the reason.
OPERAND = r"^[^\x00-\x1f\x7f-][^\x00-\x1f\x7f]*$"
Unit = Annotated[str, Field(min_length=1, max_length=255, pattern=OPERAND,
                            description="systemd unit")]
Container = Annotated[str, Field(min_length=1, max_length=128, pattern=OPERAND)]
Lines = Annotated[int, Field(ge=1, le=2000, description="Most lines")]
ABSOLUTE_PATH = r"^/[^\x00-\x1f]{0,4095}$"
Path = Annotated[str, Field(pattern=ABSOLUTE_PATH, description="Absolute path")]
ContainerRuntime = Literal["docker", "podman"]


def screened(name: str, text: str) -> str:
    """Free text a tool keeps for a person to read (a rationale): `text` if it is printable
    on one line (display.unprintable: `str.isprintable`, the target's rule for requests),
    else a ToolError naming the reason code and the offset."""
    bad = unprintable(text)
    if bad is not None:
        raise Refused(free_text_refusal(name, text), bad.reason, "server")
    return text
