"""Shared fixtures: a local HTTP server on 127.0.0.1 and a throwaway copy of the repo."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
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


def tool_env() -> dict[str, str]:
    """Environment in which dvc stage commands find this venv's python."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


@dataclass
class RepoCopy:
    """A git-initialised copy of the project's tracked files, for real `dvc repro` runs."""

    root: Path

    def run(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        result = subprocess.run(args, cwd=self.root, env=tool_env(), capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(str(VENV_BIN / "dvc"), *args, check=check)

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


@pytest.fixture
def repo_copy(tmp_path: Path) -> RepoCopy:
    root = tmp_path / "repo"
    root.mkdir()
    return copy_repo(root)
