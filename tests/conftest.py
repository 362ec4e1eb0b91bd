"""Fixtures every kind of test uses; the helpers they share are in helpers.py, the e2e fixtures in e2e/conftest.py.

Under pytest-xdist (`make test` runs `-n 2 --dist loadgroup`) each group runs on one worker: a file's tests stay
together, so its module fixtures are built once, and the tests of one expensive session fixture stay together, so
it is built once per run, not once per worker.
"""

from __future__ import annotations

import http.server
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

from helpers import REPO, LocalServer, serving

SHARED = ("pipeline_repo", "trained", "mlflow_server", "postgres", "s3_endpoint")  # session fixtures worth a group


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("dist", "no") != "loadgroup":
        return
    for item in items:
        shared = next((name for name in SHARED if name in item.fixturenames), None)
        item.add_marker(pytest.mark.xdist_group(shared or item.path.relative_to(REPO).as_posix()))


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
