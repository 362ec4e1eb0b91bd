"""Fixtures every kind of test uses; the helpers they share are in helpers.py, the e2e fixtures in e2e/conftest.py.

Under pytest-xdist (`make test` runs `-n 2 --dist loadfile --no-loadscope-reorder`) a file's tests run on one
worker, so its module fixtures are built once, and so do the files of each SHARED_FOLDERS folder, so their
session fixture is built once per run, not once per worker. Files start in collection order, the end-to-end
files first, so the short unit tests even out the two workers' ends.
"""

from __future__ import annotations

import os

from seecam.sweep import threads_per_worker  # imports no torch

# Each xdist worker, and every process it starts, gets its share of the cores, set before torch is imported:
# the share `seecam sweep` gives its queue workers (two tiny trainings side by side took 14.7 s for 3 epochs
# with a thread per core each, 5.0 s with one each, on 2 cores). A value set outside is kept.
if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
    os.environ.setdefault("OMP_NUM_THREADS", str(threads_per_worker(workers)))

import http.server  # noqa: E402 (after the thread share)
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

from helpers import LocalServer, serving

# Folders whose files read one session fixture that takes a minute to build (their conftest.py): one worker runs them.
SHARED_FOLDERS = ("tests/e2e/pipeline/", "tests/e2e/seeds/", "tests/unit/explain/")


def pytest_xdist_make_scheduler(config: pytest.Config, log) -> object | None:
    """`--dist loadfile`, with each SHARED_FOLDERS folder as one unit.

    (xdist's own `loadgroup` marks are lost under pytest 9.2, which no longer reads the node id xdist rewrites:
    every test became its own unit, and each module fixture was built on both workers.)
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileOrSharedFolderScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return next((folder for folder in SHARED_FOLDERS if path.startswith(folder)), path)

    return FileOrSharedFolderScheduling(config, log)


@pytest.fixture
def fresh_dynamo():
    """torch.compile's caches and counters emptied before and after: a test counts only its own graphs."""
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


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

    with serving(Handler) as url:
        state.url = url
        yield state


@pytest.fixture(scope="module")
def module_store(tmp_path_factory) -> str:
    """The URI of an MLflow SQLite store shared by one test module (creating one takes seconds): each test that
    uses it makes an experiment of its own (mlflow_experiment)."""
    return f"sqlite:///{tmp_path_factory.mktemp('store')}/mlflow.db"


@pytest.fixture
def mlflow_experiment(module_store, tmp_path, monkeypatch, request) -> str:
    """A new experiment, named after the test, in the module's store, which MLflow now points at."""
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(module_store)
    return mlflow.create_experiment(request.node.name[:100], artifact_location=(tmp_path / "art").as_uri())
