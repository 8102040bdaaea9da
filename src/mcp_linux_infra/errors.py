"""One exception type for failures the user can fix: the CLI prints its message, no traceback."""


class UserError(Exception):
    """A failure with a clear message and, where known, what to do about it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint
