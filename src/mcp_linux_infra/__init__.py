"""mcp-linux-infra: LLM diagnostics over SSH, enforced on the target; human-signed actions."""

__version__ = "0.1.0"
