"""Real SIGKILLs (os.killpg on the whole process group) mid-download: the rerun completes clean (mid-explain:
pipeline/test_kill_during_explain.py).

"Clean" means no `.<name>.*.tmp`, `.part` or `.old` anywhere in the repo: a killed writer's leftovers are
swept by the next writer of the same target, and a data swap caught between its renames is undone.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cifar_archives import build_full_archive
from helpers import VENV_BIN, RepoCopy, assert_repro_completes_clean, kill_when

CHUNK = 16 << 10


@dataclass
class ThrottledServer:
    """Serves one archive from 127.0.0.1, one 16 KiB chunk per `delay` seconds while `slow`."""

    url: str
    slow: bool = True
    delay: float = 0.05


@pytest.fixture(scope="module")
def full_archive(tmp_path_factory) -> dict:
    return build_full_archive(tmp_path_factory.mktemp("archive") / "cifar-10-binary.tar.gz")


@pytest.fixture
def archive_server(full_archive) -> Iterator[ThrottledServer]:
    payload = full_archive["path"].read_bytes()
    state = ThrottledServer("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            for start in range(0, len(payload), CHUNK):
                self.wfile.write(payload[start:start + CHUNK])
                if state.slow:
                    time.sleep(state.delay)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_port}/cifar-10-binary.tar.gz"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


def data_tmp_dirs(repo: RepoCopy) -> list[Path]:
    return list((repo.root / "data").glob(".cifar10.*.tmp"))


def set_archive(repo: RepoCopy, server: ThrottledServer, full_archive: dict) -> None:
    repo.set_params(data__url=server.url, data__md5=full_archive["md5"])


PHASES = {
    # the .part file is growing: the stream is under way
    "stream": lambda raw, repo: any(p.stat().st_size for p in raw.glob("*.part")),
    # the archive is complete and cached, nothing written yet: the stage parses and checks it in memory
    "parse": lambda raw, repo: (raw / "cifar-10-binary.tar.gz").is_file(),
    # the new data set is being written beside data/cifar10 (the 177 MB leftover of the issue)
    "save": lambda raw, repo: bool(data_tmp_dirs(repo)),
}


@pytest.mark.parametrize("phase", PHASES)
def test_kill_during_download_then_repro_completes_clean(repo_copy, archive_server, full_archive, phase):
    set_archive(repo_copy, archive_server, full_archive)
    archive_server.slow = phase == "stream"
    raw = repo_copy.root / "data/raw"
    kill_when(repo_copy, [str(VENV_BIN / "dvc"), "repro", "download"], lambda: PHASES[phase](raw, repo_copy))
    if phase == "stream":
        assert list(raw.glob("*.part"))
    archive_server.slow = False
    assert_repro_completes_clean(repo_copy, "download")
    checks = json.loads((repo_copy.root / "reports/data_checks.json").read_text())
    assert checks["ok"] and checks["splits"]["train"]["count"] == 50000


def test_kill_between_the_swaps_two_renames_is_undone(repo_copy, archive_server, full_archive):
    """The rename window is microseconds wide, so the test makes the exact state a kill there leaves."""
    set_archive(repo_copy, archive_server, full_archive)
    archive_server.slow = False
    repo_copy.dvc("repro", "download")
    data = repo_copy.root / "data"
    before = {p.name: p.read_bytes() for p in (data / "cifar10").iterdir()}
    (data / ".cifar10.k1ll3d00.tmp").mkdir()
    os.replace(data / "cifar10", data / ".cifar10.old")
    assert_repro_completes_clean(repo_copy, "download")
    assert {p.name: p.read_bytes() for p in (data / "cifar10").iterdir()} == before
