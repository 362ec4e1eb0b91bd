"""A training stage killed mid-run resumes from its checkpoint and ends exactly as an uninterrupted run."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from mlflow import MlflowClient

from conftest import tool_env

pytestmark = pytest.mark.e2e


def results(root):
    with (root / "reports/train/cnn/history.csv").open() as f:
        history = [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in csv.DictReader(f)]
    return history, torch.load(root / "models/cnn.pt", weights_only=True)["state_dict"]


def test_killed_run_resumes_to_the_same_result(repo_copy):
    root = repo_copy.root
    repo_copy.use_tiny_synthetic_data(epochs=4, train_size=1200)
    repo_copy.stage("download")
    repo_copy.stage("train", "cnn")
    expected_history, expected_weights = results(root)
    for path in ("checkpoints/cnn.ckpt", "models/cnn.pt", "reports/train/cnn/history.csv"):
        (root / path).unlink()

    process = subprocess.Popen([sys.executable, "stages/train.py", "cnn"], cwd=root, env=tool_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (root / "checkpoints/cnn.ckpt").exists():
        assert process.poll() is None and time.monotonic() < deadline, "training ended before its first checkpoint"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (root / "models/cnn.pt").exists()  # killed mid-training

    resumed = repo_copy.stage("train", "cnn")
    assert "resuming from checkpoints/cnn.ckpt after epoch" in resumed.stderr
    history, weights = results(root)
    assert history == expected_history
    assert weights.keys() == expected_weights.keys()
    assert all(torch.equal(weights[k], expected_weights[k]) for k in weights)

    run_id = (root / "reports/train/cnn/run.json").read_text().split('"run_id": "')[1].split('"')[0]
    steps = [m.step for m in MlflowClient(f"sqlite:///{root}/mlflow.db").get_metric_history(run_id, "val_acc")]
    assert sorted(steps) == [1, 2, 3, 4]  # the resumed run continued the same MLflow run

    repo_copy.set_params(train__lr=0.002)
    fresh = repo_copy.stage("train", "cnn")
    assert "was made with other params or data; starting fresh" in fresh.stderr
