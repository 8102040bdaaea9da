"""The client of a host's read tier (mcp-reader's forced command, mcp-wrapper): the protocol
(`protocol`) and every command the client sends through it (`commands`). The host decides
what runs (system/README.md, "The read-only protocol")."""
