"""Where a person approves a proposal: the console's page for it, from the one origin setting.

The MCP tools, the notifications and the console itself build links here, so a link in a
tool answer or a chat message always opens the page the console serves.
"""

from urllib.parse import quote

from mcp_linux_infra.settings import Settings

PROPOSAL_PATH = "/p/{id}"


def proposal_path(proposal_id: str) -> str:
    return PROPOSAL_PATH.format(id=quote(proposal_id, safe=""))


def proposal_url(settings: Settings, proposal_id: str) -> str:
    return settings.console_origin.rstrip("/") + proposal_path(proposal_id)
