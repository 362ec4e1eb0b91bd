"""The one exception type for mistakes a user can fix (params, inputs, network), and its exit path.

Anything else that escapes is a bug and keeps its traceback. A stop (Ctrl-C, or SIGTERM from `kill`, a job
limit or a scheduler) is one line too: SIGTERM is raised as `Stopped`, a KeyboardInterrupt, so every
`except KeyboardInterrupt` and `finally` treats both alike and the training run is marked KILLED. A stop also
silences logging: a library interrupted mid-call (SQLAlchemy closing a cursor under MLflow) would otherwise log
its own cleanup traceback above that line.
"""

import logging
import signal
import sys
from collections.abc import Callable


class SeecamError(Exception):
    """A user-fixable problem, reported as one line and an exit code."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Stopped(KeyboardInterrupt):
    """SIGTERM, delivered as an exception in the main thread like Ctrl-C's KeyboardInterrupt."""


def _stop(signum: int, frame: object) -> None:
    logging.disable(logging.CRITICAL)
    raise Stopped() if signum == signal.SIGTERM else KeyboardInterrupt()


def run(main: Callable[[], object]) -> None:
    """Run a stage or command; a user error becomes one `error:` line on stderr and its exit code."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        main()
    except SeecamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        stopped = isinstance(exc, Stopped)
        print(f"{'stopped by SIGTERM' if stopped else 'interrupted'}; outputs were left as they were",
              file=sys.stderr)
        sys.exit(128 + (signal.SIGTERM if stopped else signal.SIGINT))
