"""The one trained pipeline the tests in this folder read: built once a run, on one xdist worker.

`make test` keeps this folder's files on one worker (tests/conftest.py), so the minute-long `dvc repro` below
runs once, not once per worker.
"""

from __future__ import annotations

import pytest

from helpers import UNUSUAL_DIR, RepoCopy, copy_repo


@pytest.fixture(scope="session")
def pipeline_repo(tmp_path_factory) -> RepoCopy:
    """One full `dvc repro` on tiny synthetic data, shared read-only by the tests of later stages.

    It lives in a path with a space and a non-ASCII letter (UNUSUAL_DIR).
    """
    root = tmp_path_factory.mktemp("pipeline") / UNUSUAL_DIR
    root.mkdir()
    repo = copy_repo(root)
    repo.use_tiny_synthetic_data(epochs=3, train_size=1500, test_size=300)
    repo.repro_log = repo.dvc("repro").stdout
    return repo
