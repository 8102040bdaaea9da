"""The MCP server: the tools (`tools/`, one module per domain), what they share (`toolcall`,
`args`, `answers`, `parsers`, `formatting`), the resources and prompt, and the transports
(`run`, `http`). It reaches hosts only through `readonly` and `approvals`."""
