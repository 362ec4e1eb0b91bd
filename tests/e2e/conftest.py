"""The end-to-end tests' marker and fixtures: every test under tests/e2e/ is marked `e2e` here, once.

`make test-fast` runs the unit tests alone; `pytest -m "not e2e"` skips these anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import MlflowServer, RepoCopy, copy_repo, free_port, start_mlflow_server, stop_process_group

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def repo_copy(tmp_path: Path) -> RepoCopy:
    root = tmp_path / "repo"
    root.mkdir()
    return copy_repo(root)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[MlflowServer]:
    """A real `mlflow server` on 127.0.0.1 (SQLite backend, proxied artifacts), shared by the session."""
    port = free_port()
    process = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"), port)
    yield MlflowServer(f"http://127.0.0.1:{port}", process)
    stop_process_group(process)
