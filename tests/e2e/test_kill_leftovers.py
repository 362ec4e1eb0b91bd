"""Real SIGKILLs (os.killpg on the whole process group) mid-download and mid-explain: the rerun completes clean.

"Clean" means no `.<name>.*.tmp`, `.part` or `.old` anywhere in the repo: a killed writer's leftovers are
swept by the next writer of the same target, and a data swap caught between its renames is undone.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cifar_archives import build_full_archive
from helpers import VENV_BIN, RepoCopy, tool_env

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


def kill_when(repo: RepoCopy, args: list[str], ready: Callable[[], bool], timeout: float = 120) -> None:
    """Start `args` in its own process group; SIGKILL the whole group as soon as `ready()` holds."""
    process = subprocess.Popen(args, cwd=repo.root, env=tool_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{' '.join(args)} ended (or timed out) before the moment to kill it")
            time.sleep(0.005)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def unfinished_writes(root: Path) -> list[str]:
    """Temp files, partial downloads and swap copies anywhere in the repo (git's own files aside)."""
    return sorted(
        str(path.relative_to(root)) for path in root.rglob("*")
        if ".git" not in path.relative_to(root).parts
        and ((path.name.startswith(".") and path.name.endswith((".tmp", ".old"))) or path.name.endswith(".part"))
    )


def data_tmp_dirs(repo: RepoCopy) -> list[Path]:
    return list((repo.root / "data").glob(".cifar10.*.tmp"))


def assert_repro_completes_clean(repo: RepoCopy, *targets: str) -> None:
    repo.dvc("repro", *targets)
    assert "up to date" in repo.dvc("status", *targets).stdout
    assert unfinished_writes(repo.root) == []


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


def test_kill_during_explain_figures_then_repro_completes_clean(repo_copy):
    repo_copy.use_tiny_synthetic_data(epochs=1, train_size=400, test_size=100)
    repo_copy.set_params(evaluate__bootstrap_samples=50, evaluate__latency_repeats=1, explain__faithfulness_samples=10,
                         explain__images=[1, 2])
    repo_copy.dvc("repro")
    repo_copy.set_params(explain__faithfulness_samples=12)  # explain is stale, as after an edit
    figures = repo_copy.root / "reports/explain"
    kill_when(repo_copy, [str(VENV_BIN / "python"), "stages/explain.py"], lambda: any(figures.glob(".*.png.*.tmp")))
    assert list(figures.glob(".*.png.*.tmp"))  # the kill hit a figure write: its temp file is left
    assert_repro_completes_clean(repo_copy)
