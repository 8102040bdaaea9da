"""One exception type for failures the user can fix: the CLI prints its message, no traceback,
and exits with its code. The codes are documented in docs/OPERATIONS.md ("Exit codes")."""

EXIT_OK = 0
EXIT_FAILED = 1       # the command ran; what it did failed or was refused (a check, a trust)
EXIT_USAGE = 2        # a bad argument, or a request refused as it stands
EXIT_CONFIG = 3       # a bad or unknown setting, a bad config file
EXIT_SYSTEM = 4       # a file or directory that cannot be read or written
EXIT_HOST = 5         # a host: unreachable, not SSH, host key, authentication
EXIT_INTERNAL = 70    # a bug: the message names it; --debug shows the traceback
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A failure with a clear message and, where known, what to do about it."""

    def __init__(self, message: str, hint: str | None = None, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.hint = hint
        self.exit_code = exit_code
