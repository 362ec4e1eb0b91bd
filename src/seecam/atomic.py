"""Atomic writes: readers see the old file or the new one, never half of one.

Every output goes to a temporary sibling `.<name>.<random>.tmp` first and is
renamed into place, so a failed or killed stage leaves the previous good output
untouched. What a SIGKILL leaves behind (the temp sibling, or a directory swap
caught between its two renames) is cleaned up or undone by the next writer of
the same target: DVC runs one writer per output, so a sibling is never live.
A write the system refuses (a full disk, a read-only file system, a quota) is one
line naming the target and the cause, e.g. "no space left on device while writing
models/cnn.pt".
"""

from __future__ import annotations

import errno
import glob
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from seecam.errors import SeecamError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def sweep_stale(path: Path) -> None:
    """Remove temp siblings a killed writer of `path` left (a 177 MB data dir, a half-written figure).

    Only `.<name>.<random>.tmp` with a dot-free random part (mkstemp's never has one) belongs to `path`;
    `.<name>.b.<random>.tmp` belongs to the target `<name>.b`.
    """
    prefix = _temp_prefix(path)
    for stale in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        if "." in stale.name[len(prefix):-len(".tmp")]:
            continue
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


FIXES = {errno.ENOSPC: "free some space there", errno.EDQUOT: "free some space there",
         errno.EROFS: "make it writable", errno.EACCES: "make it writable", errno.EPERM: "make it writable"}


def write_error(exc: OSError, path: str | Path) -> SeecamError:
    """One line for an OS error while writing `path`: the cause as the system names it, the path, the fix."""
    shown = Path(path)
    if shown.is_absolute() and shown.is_relative_to(Path.cwd()):
        shown = shown.relative_to(Path.cwd())
    cause = (exc.strerror or str(exc) or type(exc).__name__).lower()
    return SeecamError(f"{cause} while writing {shown}; {FIXES.get(exc.errno, 'fix that')} and rerun")


@contextmanager
def write_errors(path: str | Path) -> Iterator[None]:
    """Turn an OSError raised while writing `path` into write_error's one line."""
    try:
        yield
    except OSError as exc:
        raise write_error(exc, path) from None


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    with write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            tmp_path.chmod(0o666 & ~_umask())  # mkstemp's 0600 is for secrets, not reports
            yield tmp_path
            os.replace(tmp_path, path)
        finally:
            tmp_path.unlink(missing_ok=True)


def write_serialised(path: str | Path, serialise: Callable[[IO[bytes]], None]) -> None:
    """Serialise into memory, then write the bytes atomically.

    For torch.save: its own file writer reports a full disk as `RuntimeError: [enforce fail at
    inline_container.cc] unexpected pos`, burying the cause; written from memory, it is an OSError that
    names it. A model or checkpoint is tens of MB, so the copy costs little.
    """
    buffer = io.BytesIO()
    serialise(buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def write_text(path: str | Path, text: str) -> None:
    """Atomically write a text file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, data: Any) -> None:
    """Atomically write pretty, key-sorted JSON (stable diffs for DVC metrics)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _old_copy(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def recover_dir(path: str | Path) -> None:
    """Undo a directory swap killed between its two renames: `path` is gone, its previous content is `.old`."""
    path = Path(path)
    old = _old_copy(path)
    if not path.exists() and old.is_dir():
        os.replace(old, path)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temp dir beside `path`; swap it in for `path` only on success."""
    path = Path(path)
    with write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        recover_dir(path)
        sweep_stale(path)
        old = _old_copy(path)
        shutil.rmtree(old, ignore_errors=True)  # a kill after the swap, before its cleanup
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp"))
        try:
            tmp.chmod(0o777 & ~_umask())
            yield tmp
            if path.exists():
                os.replace(path, old)
            os.replace(tmp, path)  # a kill just before this leaves no `path`: recover_dir puts `old` back
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def write_csv(path: str | Path, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """Atomically write rows as CSV with a header (DVC plots read these)."""
    lines = [",".join(columns)] + [",".join(_csv_value(row[c]) for c in columns) for row in rows]
    write_text(path, "\n".join(lines) + "\n")


def _csv_value(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)
