"""Shared fixtures: a local HTTP server on 127.0.0.1 and a throwaway copy of the repo."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@dataclass
class LocalServer:
    """Serves `root` on 127.0.0.1; `fail_next` answers that many requests with 503 first."""

    root: Path
    url: str = ""
    requests: list[str] = field(default_factory=list)
    fail_next: int = 0


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[LocalServer]:
    root = tmp_path / "www"
    root.mkdir()
    state = LocalServer(root)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):  # noqa: N802 (http.server's naming)
            state.requests.append(self.path)
            if state.fail_next > 0:
                state.fail_next -= 1
                self.send_error(503, "try again")
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def tool_env(**extra: str) -> dict[str, str]:
    """Environment in which dvc stage commands find this venv's python (and no outside MLflow URI)."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MLFLOW_TRACKING_URI", None)
    return env | extra


@dataclass
class RepoCopy:
    """A git-initialised copy of the project's tracked files, for real `dvc repro` runs."""

    root: Path

    def run(self, *args: str, check: bool = True, timeout: float = 900, **env: str) -> subprocess.CompletedProcess:
        result = subprocess.run(args, cwd=self.root, env=tool_env(**env), capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def dvc(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        return self.run(str(VENV_BIN / "dvc"), *args, check=check, **env)

    def stage(self, script: str, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        """Run a stage script directly, as DVC would (cwd = repo root)."""
        return self.run(sys.executable, f"stages/{script}.py", *args, check=check, **env)

    def use_tiny_synthetic_data(self, epochs: int = 2, train_size: int = 600, test_size: int = 200) -> None:
        """Small, fast settings: synthetic data, few epochs."""
        self.set_params(data__source="synthetic", data__val_size=100, train__epochs=epochs,
                        data__synthetic={"train_size": train_size, "test_size": test_size, "seed": 0})

    def set_params(self, **dotted: object) -> None:
        """Set params like `data__source="synthetic"` (double underscore = dot)."""
        path = self.root / "params.yaml"
        params = yaml.safe_load(path.read_text())
        for key, value in dotted.items():
            node = params
            *parents, last = key.split("__")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        path.write_text(yaml.safe_dump(params, sort_keys=False))


def copy_repo(destination: Path) -> RepoCopy:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    subprocess.run(["git", "init", "-q"], cwd=destination, check=True)
    return RepoCopy(destination)


@pytest.fixture(scope="session")
def pipeline_repo(tmp_path_factory) -> RepoCopy:
    """One full `dvc repro` on tiny synthetic data, shared read-only by the tests of later stages."""
    repo = copy_repo(tmp_path_factory.mktemp("pipeline"))
    repo.use_tiny_synthetic_data(epochs=3, train_size=1500, test_size=300)
    repo.dvc("repro")
    return repo


@pytest.fixture
def repo_copy(tmp_path: Path) -> RepoCopy:
    root = tmp_path / "repo"
    root.mkdir()
    return copy_repo(root)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MlflowServer:
    url: str
    process: subprocess.Popen


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[MlflowServer]:
    """A real `mlflow server` on 127.0.0.1 (SQLite backend, proxied artifacts), shared by the session."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "art")],
        stdout=log, stderr=subprocess.STDOUT, env=tool_env(), start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log_tail = (root / "server.log").read_text()[-2000:]
                raise RuntimeError(f"mlflow server did not start: {log_tail}") from None
            time.sleep(0.5)
    yield MlflowServer(url, process)
    os.killpg(process.pid, 15)
    process.wait(timeout=30)
    log.close()
