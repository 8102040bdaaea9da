"""The names of the target tier the client uses, in one place: the two target users and the
syslog identifier of the action tier's records. Everything else about a target (its paths,
policy, catalog) is the target's own (system/README.md)."""

READER_USER = "mcp-reader"  # the read tier's user; its forced command is mcp-wrapper
ACTION_USER = "pra-runner"  # the action tier's user; its forced command is pra-exec
ACTION_RECORDS = "pra-run"  # syslog identifier of the action runner's records (root's)
PROGRAM_DIRS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin")  # where a drafted command is looked for
