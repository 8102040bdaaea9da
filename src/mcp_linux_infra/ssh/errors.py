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


class ClientKeyError(SSHError):
    """This side's key for the tier cannot be had (nothing was sent to the host)."""

    kind = "client_key"


class AgentUnavailable(ClientKeyError):
    kind = "agent_unavailable"


class AgentKeyMissing(ClientKeyError):
    kind = "agent_key_missing"


class KeyPassphrase(ClientKeyError):
    kind = "key_passphrase"


class RouteInvalid(SSHError):
    """The host's ProxyJump / ProxyCommand (inventory or ssh config) cannot be honoured."""

    kind = "route_invalid"
