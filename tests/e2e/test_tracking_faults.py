"""A real tracking server killed mid-training: one line within a bounded wait, the checkpoint kept, and a
rerun after the restart completes the same run."""

import signal
import sys
import time

import pytest
from mlflow import MlflowClient

from conftest import free_port, start_mlflow_server, stop_process_group

pytestmark = pytest.mark.e2e


def test_server_dying_mid_training_is_one_line_and_the_rerun_completes_the_same_run(repo_copy, tmp_path):
    repo_copy.use_tiny_synthetic_data(epochs=5, train_size=1200)
    repo_copy.stage("download")
    server_root, port = tmp_path / "server", free_port()
    server_root.mkdir()
    uri = f"http://127.0.0.1:{port}"
    server = start_mlflow_server(server_root, port)
    try:
        training = repo_copy.spawn(sys.executable, "stages/train.py", "cnn", MLFLOW_TRACKING_URI=uri)
        state = repo_copy.wait_for_checkpoint("cnn", 1, training)
        stop_process_group(server, signal.SIGKILL)
        died = time.monotonic()
        _, stderr = training.communicate(timeout=300)
        waited = time.monotonic() - died
        assert training.returncode == 2, stderr
        assert waited < 90, f"took {waited:.0f} s to give up"
        assert "Traceback" not in stderr
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and stderr.strip().splitlines()[-1] == errors[0]
        assert errors[0].startswith(f"error: MLflow tracking server {uri} is unreachable")
        assert "checkpoint is kept" in errors[0]
        assert repo_copy.checkpoint("cnn")["run_id"] == state["run_id"]  # kept for the rerun

        server = start_mlflow_server(server_root, port)  # same port, same backend store
        rerun = repo_copy.stage("train", "cnn", MLFLOW_TRACKING_URI=uri)
        assert "resuming from" in rerun.stderr
        run = MlflowClient(uri).get_run(state["run_id"])
        assert run.info.status == "FINISHED" and f'"run_id": "{state["run_id"]}"' in (
            repo_copy.root / "reports/train/cnn/run.json").read_text()
        steps = [m.step for m in MlflowClient(uri).get_metric_history(state["run_id"], "val_acc")]
        assert sorted(steps) == [1, 2, 3, 4, 5]
        assert repo_copy.checkpoint("cnn") is None
    finally:
        stop_process_group(server)
