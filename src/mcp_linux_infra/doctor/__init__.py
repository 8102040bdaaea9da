"""`mcp-linux-infra doctor`: is each host ready for this server, check by check."""
