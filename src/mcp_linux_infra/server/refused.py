"""A tool's refusal with its reason code, so the call is counted as refused, by reason
(server/metrics.py); the model reads the message like any other ToolError's."""

from mcp.server.mcpserver.exceptions import ToolError


class Refused(ToolError):
    """`by`: "target" (its policy said no) or "server" (the server's own check)."""

    def __init__(self, message: str, reason: str, by: str):
        super().__init__(message)
        self.reason = reason
        self.by = by
