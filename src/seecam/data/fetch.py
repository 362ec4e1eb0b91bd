"""Fetch an archive by http(s):// or file:// URL or plain path, and verify its md5.

Downloads go to `<name>.part` and are renamed only once the md5 matches, so a
cached archive is always a good one and is never fetched twice. Transient
failures (timeouts, refused connections, HTTP 5xx/429) are retried with
exponential backoff; permanent ones (DNS failure, HTTP 4xx, a redirect loop, md5
mismatch, a full disk) fail at once with one line that says how to fix them.
`timeout` bounds each wait for the server; `deadline` bounds the whole download,
retries included, so a server that sends a byte a second cannot hold it forever. Within that, a
minimum-throughput window (curl's --speed-limit/--speed-time): fewer than `min_bytes_per_second` on
average over `stall_seconds` is a stall, which fails at once, not retried (a retry would trickle again),
so a dead link ends in about a minute while a slow, steady one still gets the whole deadline.
"""

from __future__ import annotations

import hashlib
import http.client
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from seecam.atomic import write_error
from seecam.errors import SeecamError

CHUNK = 1 << 20
MIRROR_HINT = ("set data.url to a mirror or a local file (file:///path/cifar-10-binary.tar.gz or a plain path), "
               "or work offline: set data.source: synthetic")


def file_md5(path: Path) -> str:
    """md5 of a file, read in chunks."""
    digest = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_archive(
    url: str, md5: str, cache_dir: Path, timeout: float = 60.0, retries: int = 3, backoff: float = 1.0,
    deadline: float = 3600.0, min_bytes_per_second: float = 1024.0, stall_seconds: float = 60.0,
) -> Path:
    """Return a local path to the archive at `url` whose md5 is `md5`.

    Local files are used in place; remote ones are cached in `cache_dir`.
    """
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("http", "https"):
        target = cache_dir / (Path(parsed.path).name or "archive.tar.gz")
        _part(target).unlink(missing_ok=True)  # what a killed download left
        if target.is_file() and file_md5(target) == md5.lower():
            return target
        return _download(url, target, md5, timeout, retries, backoff, deadline,
                         _MinimumRate(min_bytes_per_second, stall_seconds))
    if parsed.scheme == "file":
        local = Path(urllib.request.url2pathname(parsed.path))
    elif len(parsed.scheme) <= 1:  # a plain path (or a Windows drive letter)
        local = Path(url)
    else:
        raise SeecamError(f"data.url: unsupported scheme {parsed.scheme!r} in {url}; use http(s)://, file:// or a path")
    if not local.is_file():
        raise SeecamError(f"data.url: no file at {local}; {MIRROR_HINT}")
    _verify_md5(local, md5, url)
    return local


def _part(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def _download(url: str, target: Path, md5: str, timeout: float, retries: int, backoff: float,
              deadline: float, minimum: _MinimumRate) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = _part(target)
    try:
        with _deadline(deadline):
            for attempt in range(retries + 1):
                try:
                    _stream(url, part, timeout, minimum)
                    break
                except _Transient as exc:
                    if attempt == retries:
                        tries = retries + 1
                        raise SeecamError(f"download of {url} failed after {tries} tries ({exc}); "
                                          f"{MIRROR_HINT}") from None
                    time.sleep(backoff * 2**attempt)
        _verify_md5(part, md5, url)
        part.replace(target)
    except _Stalled as stall:
        raise SeecamError(f"download of {url} stalled: {stall.received:,} bytes in the last {stall.seconds:.0f} s, "
                          f"below data.min_bytes_per_second = {minimum.bytes_per_second:g} for data.stall_seconds = "
                          f"{minimum.seconds:g} s; lower data.min_bytes_per_second for a slow link, or "
                          f"{MIRROR_HINT}") from None
    except _DeadlinePassed:
        got = part.stat().st_size if part.exists() else 0
        raise SeecamError(f"download of {url} did not finish within data.deadline_seconds = {deadline:g} s "
                          f"({got:,} bytes arrived); raise data.deadline_seconds for a slow link, or "
                          f"{MIRROR_HINT}") from None
    finally:
        part.unlink(missing_ok=True)
    return target


class _Transient(Exception):
    """A failure worth retrying."""


class _Stalled(Exception):
    """Fewer bytes than the minimum rate allows arrived over a whole window."""

    def __init__(self, received: int, seconds: float) -> None:
        super().__init__(f"{received} bytes in {seconds:.1f} s")
        self.received, self.seconds = received, seconds


@dataclass(frozen=True)
class _MinimumRate:
    """`bytes_per_second` on average over each window of `seconds` (0 bytes per second: no minimum)."""

    bytes_per_second: float
    seconds: float

    def watch(self) -> Callable[[int], None]:
        """A callback for each chunk's size that raises _Stalled once a whole window fell short.

        Windows follow each other from the first byte on; a chunk that arrives after a window ended closes
        it. A server that sends nothing at all is the per-wait `timeout`'s to catch.
        """
        began, received = time.monotonic(), 0

        def arrived(size: int) -> None:
            nonlocal began, received
            received += size
            elapsed = time.monotonic() - began
            if elapsed >= self.seconds:
                if received < self.bytes_per_second * elapsed:
                    raise _Stalled(received, elapsed)
                began, received = time.monotonic(), 0

        return arrived


class _DeadlinePassed(Exception):
    """The download's deadline passed (raised by SIGALRM wherever the download was waiting)."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise _DeadlinePassed after `seconds`, whatever the download waits on: DNS, connect, headers or body.

    A socket timeout bounds each wait only, and a server that sends a byte a second never trips it. SIGALRM
    interrupts any blocking call of the main thread, where stages run; in another thread only the
    per-wait timeout applies.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _DeadlinePassed()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _stream(url: str, part: Path, timeout: float, minimum: _MinimumRate) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "seecam"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, part.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            written = 0  # counted, not stat()ed: the file is still open and its tail may sit in the buffer
            arrived = minimum.watch()
            with tqdm(total=total, unit="B", unit_scale=True, desc=Path(part.stem).name,
                      disable=not sys.stderr.isatty(), leave=False) as bar:
                while chunk := response.read1(CHUNK):  # what has arrived, not a wait for a whole MiB
                    written += out.write(chunk)
                    bar.update(len(chunk))
                    arrived(len(chunk))
            if total is not None and written != total:
                raise _Transient(f"connection closed after {written} of {total} bytes")
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        if 300 <= exc.code < 400:  # urllib's own message for it spans three lines
            raise SeecamError(f"download of {url} failed: it redirects in a loop (HTTP {exc.code}); "
                              "check data.url") from None
        raise SeecamError(f"download of {url} failed: HTTP {exc.code} {exc.reason}; check data.url") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, socket.gaierror):
            host = urllib.parse.urlparse(url).hostname
            raise SeecamError(f"cannot resolve host {host!r} (no network or DNS?); {MIRROR_HINT}") from None
        raise _Transient(str(exc.reason)) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException, ssl.SSLError) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from None
    except OSError as exc:  # every network error is one of the above: this one is writing the .part file
        raise write_error(exc, part) from None


def _verify_md5(path: Path, expected: str, url: str) -> None:
    actual = file_md5(path)
    if actual != expected.lower():
        raise SeecamError(
            f"md5 mismatch for {url}: expected {expected.lower()}, got {actual}; "
            "fix data.md5 or data.url (the archive may be corrupt or a different file)"
        )
