"""The one three-seed sweep the tests in this folder start from: built once a run, on one xdist worker.

`make test` keeps this folder's files on one worker (tests/conftest.py), so the sweep below (three seeds of
the whole pipeline on DVC's queue, minutes) runs once; each test module changes a copy of it.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import psutil
import pytest

from helpers import UNUSUAL_DIR, RepoCopy, copy_repo, copy_with_store


@dataclasses.dataclass
class Sweep:
    repo: RepoCopy
    names: list[str]  # the experiments, by seed
    sha: str  # their config_sha
    stdout: str  # what `seecam sweep --run` printed
    left_running: list[str]  # the command lines of processes still working in the repo when the sweep returned


@pytest.fixture(scope="session")
def sweep(tmp_path_factory) -> Sweep:
    """Three seeds swept on DVC's queue in a clone that never ran the pipeline (cheap evaluate and explain),
    as the README says, in a path with a space and a non-ASCII letter. Read-only: copy it (`swept`)."""
    tmp_path = tmp_path_factory.mktemp("sweep")
    (tmp_path / UNUSUAL_DIR).mkdir()
    repo = copy_repo(tmp_path / UNUSUAL_DIR)
    repo.use_tiny_synthetic_data(epochs=2, train_size=400, test_size=120)
    repo.use_tiny_explain()
    src = str(repo.root / "src")
    sweep = (sys.executable, "-m", "seecam.cli", "sweep", "--seeds", "0-2", "-S", "train.epochs=1")
    refused = repo.run(*sweep, check=False, PYTHONPATH=src)
    assert refused.returncode == 2 and "no git commit, and dvc exp needs one" in refused.stderr
    repo.dvc("cache", "dir", "--local", str(tmp_path / "cache"))  # DVC's queue needs an ASCII cache path (sweep.py)
    repo.commit("baseline")
    # as `.venv/bin/seecam sweep` from a shell without the venv active: the queue workers still find dvc and python
    swept = repo.run(*sweep, "--run", "-j", "2", PYTHONPATH=src, PATH="/usr/bin:/bin", timeout=1200).stdout
    left_running = processes_working_in(repo.root)
    names = sorted(n for n in repo.dvc("exp", "list", "--name-only").stdout.split() if n.startswith("seed-"))
    assert [name.rsplit("-", 1)[0] for name in names] == ["seed-0", "seed-1", "seed-2"]
    sha = re.search(r"all 3 experiments succeeded; config_sha ([0-9a-f]{16})\n", swept)[1]
    return Sweep(repo, names, sha, swept, left_running)


def processes_working_in(root: Path) -> list[str]:
    """The command line of each process whose working directory is in `root`."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        cwd = process.info["cwd"]
        if cwd is not None and Path(cwd).is_relative_to(root.resolve()):
            found.append(" ".join(process.info["cmdline"] or []))
    return found


@pytest.fixture(scope="module")
def swept(sweep, tmp_path_factory) -> Sweep:
    """A copy of the sweep for this module's tests to change (git with the experiments and the MLflow store; the
    DVC cache is shared), in a path like the sweep's."""
    return dataclasses.replace(sweep, repo=copy_with_store(sweep.repo, tmp_path_factory.mktemp("swept") / UNUSUAL_DIR))
