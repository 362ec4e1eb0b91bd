"""The one trained pipeline the tests in this folder read: built once a run, on one xdist worker.

`make test` keeps this folder's files on one worker (tests/conftest.py), so the minute-long `dvc repro` below
runs once, not once per worker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import UNUSUAL_DIR, RepoCopy, copy_repo, copy_with_store, free_port, start_ui, stop_process_group


@pytest.fixture(scope="session")
def pipeline_repo(tmp_path_factory) -> RepoCopy:
    """One full `dvc repro` on tiny synthetic data, shared read-only by the tests of later stages.

    It lives in a path with a space and a non-ASCII letter (UNUSUAL_DIR).
    """
    root = tmp_path_factory.mktemp("pipeline") / UNUSUAL_DIR
    root.mkdir()
    repo = copy_repo(root)
    repo.use_tiny_synthetic_data(epochs=3, train_size=1500, test_size=300)
    repo.set_params(explain__faithfulness_samples=100)  # 2 s of explain, where all 300 test images took 7
    repo.repro_log = repo.dvc("repro").stdout
    return repo


@dataclass
class RunningUI:
    url: str
    printed: list[str]  # its first lines: the store it serves, then the links
    links: dict[str, str]  # the links it printed, by label


@pytest.fixture(scope="session")
def mlflow_ui(pipeline_repo: RepoCopy) -> Iterator[RunningUI]:
    """`seecam ui` (what `make ui` runs) serving the pipeline's store, one for the tests that only read it (a start
    takes 9 s)."""
    port = free_port()
    process, printed = start_ui(pipeline_repo.root, port, 4)
    try:
        links = dict(re.findall(r"^\s+([\w ]+):\s+(http://\S+)", "".join(printed), re.MULTILINE))
        yield RunningUI(f"http://127.0.0.1:{port}", printed, links)
    finally:
        stop_process_group(process)


@pytest.fixture
def trained_copy(pipeline_repo: RepoCopy, tmp_path: Path) -> RepoCopy:
    """A copy of the trained pipeline that the test may change (a module's tests share one: copy_with_store)."""
    return copy_with_store(pipeline_repo, tmp_path / "trained")


def pipeline_definition(root: Path) -> dict[str, bytes]:
    """The shared pipeline's code, params and lock file, byte for byte: what tells DVC what is up to date."""
    files = [root / name for name in ("dvc.yaml", "dvc.lock", "params.yaml")]
    files += sorted(path for folder in ("src", "stages") for path in (root / folder).rglob("*.py"))
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in files}


@pytest.fixture(autouse=True)
def pipeline_left_as_built(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that leaves the shared pipeline's code, params or lock changed fails: later tests read it as built.
    (A test that changes them works on a copy: `trained_copy`, test_dvc_evaluate.py.)"""
    if "pipeline_repo" not in request.fixturenames:
        yield
        return
    root = request.getfixturevalue("pipeline_repo").root
    before = pipeline_definition(root)
    yield
    after = pipeline_definition(root)
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert changed == [], f"the test changed the shared pipeline ({', '.join(changed)}): change a copy instead"
