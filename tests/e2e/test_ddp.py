"""Real DDP: `train.processes: 2` re-launches the stage under torchrun (gloo, CPU) on tiny synthetic data."""

import csv
import signal
import sys
import time

import psutil
import pytest
import torch
from mlflow import MlflowClient

from seecam.data.store import load_dataset
from seecam.inference import load_model, predict_logits, to_device

pytestmark = pytest.mark.e2e

CPU = torch.device("cpu")
TIMEOUT_SECONDS = 20  # the process group's timeout in these tests (SEECAM_DDP_TIMEOUT_SECONDS)


def runs(root):
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def history(root):
    with (root / "reports/train/cnn/history.csv").open() as f:
        return list(csv.DictReader(f))


def test_two_torchrun_processes_train_through_dvc_repro_into_one_mlflow_run(repo_copy):
    root = repo_copy.root
    repo_copy.use_tiny_synthetic_data(epochs=5, train_size=3000, test_size=300)
    repo_copy.set_params(train__processes=2)
    result = repo_copy.dvc("repro", "train_cnn", SEECAM_DDP_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS))
    assert "starting 2 training processes" in result.stdout + result.stderr
    (run,) = runs(root)  # rank 1 logged nothing
    assert run.info.status == "FINISHED" and run.data.params["train.processes"] == "2"
    assert [row["epoch"] for row in history(root)] == ["1", "2", "3", "4", "5"]
    model, _ = load_model(root / "models/cnn.pt", "cnn")
    test = load_dataset(root / "data/cifar10").test
    accuracy = (predict_logits(model, to_device(test.images, CPU)).argmax(1) == torch.from_numpy(test.labels)).float()
    assert accuracy.mean() > 0.5  # chance is 0.1


def test_a_killed_rank_stops_the_job_within_the_timeout_and_a_rerun_resumes_the_same_run(repo_copy):
    root = repo_copy.root
    repo_copy.use_tiny_synthetic_data(epochs=4, train_size=1200, test_size=100)
    repo_copy.set_params(train__processes=2)
    env = {"SEECAM_DDP_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS)}
    repo_copy.dvc("repro", "download")
    job = repo_copy.spawn(sys.executable, "stages/train.py", "cnn", **env)
    state = repo_copy.wait_for_checkpoint("cnn", 1, job)
    (rank1,) = [p for p in psutil.Process(job.pid).children(recursive=True) if p.environ().get("RANK") == "1"]
    rank1.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    _, stderr = job.communicate(timeout=TIMEOUT_SECONDS + 60)
    assert time.monotonic() - killed < TIMEOUT_SECONDS, stderr[-3000:]
    assert job.returncode != 0
    assert "error: a training process failed, so torchrun stopped all 2" in stderr
    assert "Signal 9 (SIGKILL)" in stderr  # torchrun names the rank that died
    assert not psutil.pid_exists(rank1.pid) or rank1.status() == psutil.STATUS_ZOMBIE

    rerun = repo_copy.stage("train", "cnn", **env)
    assert "resuming from" in rerun.stderr
    (run,) = runs(root)
    assert run.info.run_id == state["run_id"] and run.info.status == "FINISHED"
    assert [row["epoch"] for row in history(root)] == ["1", "2", "3", "4"]
