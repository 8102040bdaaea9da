"""Operators with their own keys: the registry (who, which key, which credential) and the
`operators` commands. Enrollment records a key; only the role's deployment makes a target
trust it."""
