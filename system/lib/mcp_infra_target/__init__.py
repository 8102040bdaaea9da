"""Target-side library of mcp-linux-infra: stdlib only, Python 3.9+, imported from root-owned paths."""

VERSION = "0.1.0"
