"""The SSH side of the thin client: a strict, fast paramiko connection pool, one transport
per (host, tier), and the read tier's kept sessions (docs/ARCHITECTURE.md, "The MCP server")."""
