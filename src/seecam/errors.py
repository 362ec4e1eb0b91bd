"""The one exception type for mistakes a user can fix (params, inputs, network), and its exit path.

Anything else that escapes is a bug and keeps its traceback. A stop (Ctrl-C, or SIGTERM from `kill`, a job
limit or a scheduler) is one line too: SIGTERM is raised as `Stopped`, a KeyboardInterrupt, so every
`except KeyboardInterrupt` and `finally` treats both alike and the training run is marked KILLED. A stop also
silences logging: a library interrupted mid-call (SQLAlchemy closing a cursor under MLflow) would otherwise log
its own cleanup traceback above that line. A stage started by DVC also gets that SIGTERM when DVC exits, killed or
not (lifeline.py), so stopping `dvc repro` stops its stage.

A stop never lands inside a database call: raised in the middle of an MLflow write to SQLite, it left the half-done
transaction holding the store's write lock, so marking the run KILLED waited out the lock and failed (1 stop in 12
mid-training, measured). The signal is delivered again 50 ms later instead, once the call is done.
"""

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from seecam.lifeline import stop_with_parent


class SeecamError(Exception):
    """A user-fixable problem, reported as one line and an exit code."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Stopped(KeyboardInterrupt):
    """SIGTERM, delivered as an exception in the main thread like Ctrl-C's KeyboardInterrupt."""


RETRY_SECONDS = 0.05


def _in_database(frame: FrameType | None) -> bool:
    """Whether the interrupted code is inside SQLAlchemy (MLflow's stores), at any depth."""
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith("sqlalchemy."):
            return True
        frame = frame.f_back
    return False


def _stop(signum: int, frame: FrameType | None) -> None:
    if _in_database(frame):
        retry = threading.Timer(RETRY_SECONDS, os.kill, (os.getpid(), signum))
        retry.daemon = True
        retry.start()
        return
    logging.disable(logging.CRITICAL)
    if signum == signal.SIGTERM:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one stop at a time: a second must not cut its cleanup short
        raise Stopped()
    raise KeyboardInterrupt()


def run(main: Callable[[], object]) -> None:
    """Run a stage or command; a user error becomes one `error:` line on stderr and its exit code."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        stop_with_parent()
        main()
    except SeecamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:
        stop = interruption(exc)
        if stop is None:
            raise
        _stopped(stop)
    except KeyboardInterrupt as exc:
        _stopped(exc)


def interruption(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM behind `exc`, if one caused it: a stop that lands in a C extension's import (matplotlib's
    Agg backend, loaded by the first figure) comes back as `ImportError: initialization failed`, caused by it."""
    while exc is not None:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _stopped(exc: KeyboardInterrupt) -> None:
    stopped = isinstance(exc, Stopped)
    print(f"{'stopped by SIGTERM' if stopped else 'interrupted'}; outputs were left as they were", file=sys.stderr)
    sys.exit(128 + (signal.SIGTERM if stopped else signal.SIGINT))
