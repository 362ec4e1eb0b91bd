import hashlib
import http.server
import itertools
import socketserver
import time

import pytest

from cifar_archives import build_archive
from helpers import serving
from seecam.data.fetch import fetch_archive
from seecam.errors import SeecamError


@pytest.fixture
def served(http_server):
    built = build_archive(http_server.root / "cifar-10-binary.tar.gz")
    return http_server, built, f"{http_server.url}/cifar-10-binary.tar.gz"


def test_http_download_is_verified_and_cached(served, tmp_path):
    server, built, url = served
    cache = tmp_path / "raw"
    path = fetch_archive(url, built["md5"], cache, retries=0)
    assert path == cache / "cifar-10-binary.tar.gz"
    assert path.read_bytes() == built["path"].read_bytes()
    assert fetch_archive(url, built["md5"], cache, retries=0) == path
    assert server.requests == ["/cifar-10-binary.tar.gz"]  # the second call did not fetch again


def test_transient_errors_are_retried_with_backoff(served, tmp_path):
    server, built, url = served
    server.fail_next = 2
    fetch_archive(url, built["md5"], tmp_path / "raw", retries=2, backoff=0.01)
    assert len(server.requests) == 3


def test_persistent_server_error_gives_up_after_retries(served, tmp_path):
    server, built, url = served
    server.fail_next = 10
    with pytest.raises(SeecamError, match=r"failed after 3 tries \(HTTP 503 .*\); set data.url to a mirror"):
        fetch_archive(url, built["md5"], tmp_path / "raw", retries=2, backoff=0.01)
    assert not any((tmp_path / "raw").iterdir())


def test_md5_mismatch_names_both_sums_and_keeps_nothing(served, tmp_path):
    _, built, url = served
    wrong = "0" * 32
    with pytest.raises(SeecamError) as info:
        fetch_archive(url, wrong, tmp_path / "raw", retries=0)
    assert f"expected {wrong}, got {built['md5']}" in str(info.value)
    assert not any((tmp_path / "raw").iterdir())


def test_http_404_is_not_retried(http_server, tmp_path):
    with pytest.raises(SeecamError, match="HTTP 404 .*; check data.url"):
        fetch_archive(f"{http_server.url}/missing.tar.gz", "0" * 32, tmp_path / "raw", retries=3)
    assert len(http_server.requests) == 1


def test_dns_failure_says_how_to_work_offline(tmp_path):
    with pytest.raises(SeecamError, match="cannot resolve host 'cifar.invalid' .*file://") as error:
        fetch_archive("http://cifar.invalid/cifar-10-binary.tar.gz", "0" * 32, tmp_path / "raw", retries=0)
    assert str(error.value).endswith("or work offline: set data.source: synthetic")  # no archive at all


def test_refused_connection_is_retried_then_reported(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SeecamError, match="failed after 2 tries .*refused"):
        fetch_archive(f"http://127.0.0.1:{port}/a.tar.gz", "0" * 32, tmp_path / "raw", retries=1, backoff=0.01)


def test_file_url_and_plain_path_are_used_in_place(tmp_path):
    built = build_archive(tmp_path / "mirror" / "cifar-10-binary.tar.gz")
    assert fetch_archive(built["path"].as_uri(), built["md5"], tmp_path / "raw") == built["path"]
    assert fetch_archive(str(built["path"]), built["md5"], tmp_path / "raw") == built["path"]
    assert not (tmp_path / "raw").exists()


def test_missing_local_file_and_bad_scheme(tmp_path):
    with pytest.raises(SeecamError, match="no file at .*nope.tar.gz"):
        fetch_archive(str(tmp_path / "nope.tar.gz"), "0" * 32, tmp_path / "raw")
    with pytest.raises(SeecamError, match="unsupported scheme 'ftp'"):
        fetch_archive("ftp://host/a.tar.gz", "0" * 32, tmp_path / "raw")


@pytest.mark.parametrize("size", [(2 << 20) + 100, 5000])
def test_archive_whose_tail_fits_the_write_buffer_is_not_called_truncated(http_server, tmp_path, size):
    """Sizes just over a MiB multiple (or under 8 KiB) left bytes in the write buffer when the size was checked."""
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    (http_server.root / "a.tar.gz").write_bytes(payload)
    path = fetch_archive(f"{http_server.url}/a.tar.gz", hashlib.md5(payload).hexdigest(), tmp_path / "raw", retries=0)
    assert path.read_bytes() == payload and len(http_server.requests) == 1


def test_a_killed_downloads_part_file_is_removed_even_when_the_archive_is_cached(served, tmp_path):
    server, built, url = served
    cache = tmp_path / "raw"
    fetch_archive(url, built["md5"], cache, retries=0)
    (cache / "cifar-10-binary.tar.gz.part").write_bytes(b"half")
    fetch_archive(url, built["md5"], cache, retries=0)
    assert sorted(p.name for p in cache.iterdir()) == ["cifar-10-binary.tar.gz"] and len(server.requests) == 1


class Trickle(socketserver.StreamRequestHandler):
    """A server that never finishes: its status line, or its body after prompt headers, one byte per 0.2 s."""

    headers_too = False

    def handle(self):
        head = b"HTTP/1.0 200 OK\r\nContent-Length: 1000000\r\n\r\n"
        try:
            if not self.headers_too:
                self.wfile.write(head)
            for byte in itertools.cycle(head if self.headers_too else b"x"):
                self.wfile.write(bytes([byte]))
                time.sleep(0.2)
        except OSError:  # the client gave up
            pass


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_a_trickling_server_is_stopped_by_the_download_deadline(tmp_path, phase):
    handler = type("TrickleHeaders" if phase == "headers" else "TrickleBody", (Trickle,),
                   {"headers_too": phase == "headers"})
    with serving(handler) as base:
        began = time.monotonic()
        with pytest.raises(SeecamError) as info:
            fetch_archive(f"{base}/a.tar.gz", "0" * 32, tmp_path / "raw", timeout=5, retries=2, deadline=2)
        waited = time.monotonic() - began
    assert waited < 4, f"the error came after {waited:.1f} s"
    message = str(info.value)
    assert message.startswith(f"download of {base}/a.tar.gz did not finish within data.deadline_seconds = 2 s")
    assert "\n" not in message and not any((tmp_path / "raw").iterdir())


class RedirectLoop(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(302)
        self.send_header("Location", self.path)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_redirect_loop_is_one_line(tmp_path):
    with serving(RedirectLoop) as base, pytest.raises(SeecamError) as info:
        fetch_archive(f"{base}/loop.tar.gz", "0" * 32, tmp_path / "raw", retries=0)
    assert str(info.value) == f"download of {base}/loop.tar.gz failed: it redirects in a loop (HTTP 302); " \
                              "check data.url"


class Paced(socketserver.StreamRequestHandler):
    """Prompt headers, then `payload` in `piece`-byte writes every `pause` seconds; counts its connections."""

    payload = b"x" * 1_000_000
    piece = 1
    pause = 1.0
    connections = 0

    def handle(self):
        type(self).connections += 1
        self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(self.payload))
        try:
            for first in range(0, len(self.payload), self.piece):
                self.wfile.write(self.payload[first:first + self.piece])
                self.wfile.flush()
                time.sleep(self.pause)
        except OSError:  # the client gave up
            pass


def test_a_stalled_download_fails_after_the_stall_window_naming_the_params(tmp_path):
    """1 byte/s: under the minimum rate for a whole window, it fails then, not at the deadline, and is not retried
    (a retry would only trickle again)."""
    handler = type("OneByteASecond", (Paced,), {})
    with serving(handler) as base:
        began = time.monotonic()
        with pytest.raises(SeecamError) as info:
            fetch_archive(f"{base}/a.tar.gz", "0" * 32, tmp_path / "raw", timeout=5, retries=2, deadline=60,
                          min_bytes_per_second=1000, stall_seconds=2)
        waited = time.monotonic() - began
    assert 1.5 < waited < 4.5, f"the error came after {waited:.1f} s"
    message = str(info.value)
    assert message.startswith(f"download of {base}/a.tar.gz stalled: ")
    assert "below data.min_bytes_per_second = 1000 for data.stall_seconds = 2 s" in message
    assert "\n" not in message and not any((tmp_path / "raw").iterdir()) and handler.connections == 1


def test_a_slow_but_steady_link_completes(tmp_path):
    """~50 kB/s for about 3 s, checked against a 20 kB/s minimum every second: it never stalls."""
    payload = bytes(range(256)) * 600  # 153,600 bytes
    handler = type("FiftyKilobytesASecond", (Paced,), {"payload": payload, "piece": 5_000, "pause": 0.1})
    with serving(handler) as base:
        path = fetch_archive(f"{base}/a.tar.gz", hashlib.md5(payload).hexdigest(), tmp_path / "raw", retries=0,
                             min_bytes_per_second=20_000, stall_seconds=1)
    assert path.read_bytes() == payload and handler.connections == 1
