"""Checks a stage runs before its long work, so a fault found late costs nothing and rewrites nothing.

Without them an unwritable output location is a traceback after minutes of computation, and a tracking
server that is down, or a damaged SQLite store, is found only when the results are logged, after the outputs
were already replaced.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from seecam.errors import SeecamError
from seecam.tracking.store import check_store, stored_tracking, tracking_uri


def check_writable(outputs: Iterable[Path]) -> None:
    """Each output's directory takes a new file, and nothing but a file sits where an output goes.

    Writes are atomic (a temp file beside the output, then a rename: see atomic.py), so creating and
    removing such a temp file is the same test the real write will face; a directory that does not exist
    yet is tested at its nearest existing parent, so a refused run leaves not even an empty folder.
    Permissions alone are not trusted: root ignores them, while a file in the way of a directory stops
    every user.
    """
    outputs = list(outputs)
    for directory in sorted({path.parent for path in outputs}):
        existing = next((p for p in (directory, *directory.parents) if p.exists()), Path("."))
        try:
            if not existing.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            fd, probe = tempfile.mkstemp(dir=existing, prefix=".preflight.", suffix=".tmp")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise SeecamError(f"{directory}: cannot write outputs there ({exc.strerror or exc}); "
                              "make it a writable directory and rerun") from None
    for path in outputs:
        if path.exists() and not path.is_file():
            raise SeecamError(f"{path}: a directory is in the way of this output file; move it away and rerun")


def check_tracking(names: Iterable[str]) -> None:
    """The tracking store each model's run lives on (run.json, else the default) answers, or is a sound file."""
    for name in names:
        check_store(tracking_uri(stored_tracking(name)[1]))
