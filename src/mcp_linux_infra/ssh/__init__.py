"""The SSH side of the thin client: a strict, fast paramiko connection pool (DESIGN.md)."""
