"""The one exception type for mistakes a user can fix (params, inputs, network).

Anything else that escapes is a bug and keeps its traceback.
"""


class SeecamError(Exception):
    """A user-fixable problem, reported as one line and an exit code."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
