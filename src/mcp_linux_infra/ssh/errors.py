"""Everything that can go wrong reaching a host, each with what a person can do about it."""


class SSHError(Exception):
    """A host could not be used; `hint` says what the user or an operator can do."""

    kind = "ssh_error"

    def __init__(self, host: str, message: str, hint: str | None = None):
        super().__init__(f"{host}: {message}")
        self.host = host
        self.hint = hint


class Unreachable(SSHError):
    kind = "unreachable"


class HostKeyUnknown(SSHError):
    kind = "host_key_unknown"


class HostKeyChanged(SSHError):
    kind = "host_key_changed"


class AuthFailed(SSHError):
    kind = "auth_failed"


class RequestTimeout(SSHError):
    kind = "timeout"
