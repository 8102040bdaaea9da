"""The read-only tier (mcp-reader's forced command `mcp-wrapper`): screen, tokenise, the
typed argv whitelist of readonly.json, path and value rules, batch, session."""
