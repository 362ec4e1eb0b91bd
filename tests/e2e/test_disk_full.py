"""A real full disk: a small tmpfs mounted where a stage writes (checkpoints/, models/, reports/explain/, data/).

Each is one `error:` line naming the path and the cause, no MLflow run is left without its description, and
the rerun, once the disk has room (the tmpfs grown in place, its files kept), resumes or completes.
Mounting a tmpfs needs root: elsewhere these tests skip, saying so.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers import RepoCopy, all_runs
from seecam.inference import save_model
from seecam.models import build_model, model_config
from seecam.params import CnnParams, SeParams


def _mount(args: list[str]) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Callable[[str], None]]:
    """Mount a `size` tmpfs at `path`; yield a function that grows it in place (its files stay)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    try:
        _mount(["-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({getattr(exc, 'stderr', '') or exc})")
    try:
        yield lambda bigger: _mount(["-o", f"remount,size={bigger}", str(path)])
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0], result.stderr
    return errors[0]


def test_a_full_checkpoint_disk_is_one_line_leaves_no_orphan_run_and_the_rerun_resumes(repo_copy):
    root = repo_copy.root
    repo_copy.use_tiny_synthetic_data(epochs=2, train_size=600)
    repo_copy.stage("download")
    # the epoch-0 checkpoint is the model alone (~4.5 MB); from epoch 1 it holds Adam's moments too (~13 MB)
    with tmpfs(root / "checkpoints", "1m") as grow:
        line = one_error_line(repo_copy.stage("train", "cnn", check=False))
        assert line.startswith("error: no space left on device while writing checkpoints/cnn-"), line
        assert all_runs(root) == []  # the run made for this training was empty, so it is gone

        grow("10m")
        line = one_error_line(repo_copy.stage("train", "cnn", check=False))
        assert line.startswith("error: no space left on device while writing checkpoints/cnn-"), line
        [failed] = all_runs(root)
        assert failed.data.params["seed"] == "42" and failed.data.tags["model"] == "cnn"

        grow("64m")
        rerun = repo_copy.stage("train", "cnn")
    assert "after epoch 0" in rerun.stderr
    [run] = all_runs(root)
    assert run.info.run_id == failed.info.run_id and run.info.status == "FINISHED"
    assert sorted(run.data.metrics) and run.data.metrics["val_acc"] >= 0


def untrained_models(repo: RepoCopy) -> None:
    for name, params in (("cnn", CnnParams()), ("se", SeParams())):
        save_model(repo.root / f"models/{name}.pt", build_model(name, params), model_config(name, params), [])


# where the disk is full -> (what to run first, the stage that writes there, the path the line names)
PLACES = {
    "models": (lambda repo: repo.stage("download"), ("train", "cnn"), "models/cnn.pt"),
    "reports/explain": (lambda repo: (repo.stage("download"), untrained_models(repo)), ("explain",),
                        "reports/explain/"),
    "data": (lambda repo: None, ("download",), "data/cifar10"),
}


@pytest.mark.parametrize("place", PLACES)
def test_a_full_disk_while_writing_outputs_is_one_line_and_the_rerun_completes(repo_copy, place):
    prepare, stage, named = PLACES[place]
    repo_copy.use_tiny_synthetic_data(epochs=1, train_size=300, test_size=120)
    repo_copy.set_params(explain__faithfulness_samples=20, explain__images=[1, 2])
    prepare(repo_copy)
    with tmpfs(repo_copy.root / place, "200k") as grow:
        line = one_error_line(repo_copy.stage(*stage, check=False))
        assert line.startswith(f"error: no space left on device while writing {named}"), line
        grow("64m")
        rerun = repo_copy.stage(*stage)
    if place == "models":  # the last epoch's checkpoint was kept: the rerun writes the outputs, trains nothing
        assert "after epoch 1" in rerun.stderr and "epoch 1/1" not in rerun.stderr
        [run] = all_runs(repo_copy.root)
        assert run.info.status == "FINISHED"
