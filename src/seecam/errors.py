"""The one exception type for mistakes a user can fix (params, inputs, network), and its exit path.

Anything else that escapes is a bug and keeps its traceback.
"""

import sys
from collections.abc import Callable


class SeecamError(Exception):
    """A user-fixable problem, reported as one line and an exit code."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run(main: Callable[[], object]) -> None:
    """Run a stage or command; a user error becomes one `error:` line on stderr and its exit code."""
    try:
        main()
    except SeecamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted; outputs were left as they were", file=sys.stderr)
        sys.exit(130)
