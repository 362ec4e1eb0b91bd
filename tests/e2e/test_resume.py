"""Training checkpoints: a killed run resumes to the same result in the same MLflow run; a checkpoint is
never resumed by other code, params or data, never outlives a finished run, and never names a lost run; a
finished training is reused by a rerun of the same identity."""

import csv
import json
import os
import signal
import sys
import time

import psutil
import pytest
import torch
from mlflow.entities import LoggedModelStatus

from helpers import VENV_BIN, all_runs, gone, mlflow_client

PYTHON = sys.executable


def results(root):
    with (root / "reports/train/cnn/history.csv").open() as f:
        history = [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in csv.DictReader(f)]
    return history, torch.load(root / "models/cnn.pt", weights_only=True)["state_dict"]


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def run_id(root):
    return (root / "reports/train/cnn/run.json").read_text().split('"run_id": "')[1].split('"')[0]


def kill_at(repo_copy, epoch, *command):
    """Start `command`, SIGKILL it (and its children) once the cnn checkpoint reaches `epoch`."""
    process = repo_copy.spawn(*command)
    state = repo_copy.wait_for_checkpoint("cnn", epoch, process)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return state


def temp_files(root):
    """Atomic writes' temp files anywhere in the repo but DVC's and git's own folders."""
    return [p for p in root.rglob("*.tmp") if not {".dvc", ".git"} & set(p.parts)]


def test_a_forced_rerun_reuses_the_finished_training_and_a_killed_retrain_resumes_to_the_same_result(repo_copy):
    root = repo_copy.root
    repo_copy.use_tiny_synthetic_data(epochs=4, train_size=1200)
    repo_copy.dvc("repro", "train_cnn")
    expected_history, expected_weights = results(root)
    first_run = run_id(root)
    [finished] = (root / "checkpoints").iterdir()  # the finished training's record; its checkpoint is gone
    assert finished.suffix == ".done"

    # DVC runs a forced stage; the stage reuses the same identity's finished training: no epoch, no second run
    forced = repo_copy.dvc("repro", "-f", "-s", "train_cnn")
    assert "cnn: reusing its finished training" in forced.stdout
    assert "cnn epoch 1/4" not in forced.stdout + forced.stderr
    history, weights = results(root)
    assert history == expected_history and same_weights(weights, expected_weights)
    assert run_id(root) == first_run and len(all_runs(root)) == 1

    finished.unlink()  # the README's way to train again from scratch
    kill_at(repo_copy, 1, str(VENV_BIN / "dvc"), "repro", "-f", "-s", "train_cnn")
    assert not (root / "models/cnn.pt").exists()  # killed mid-training
    # forced again: unforced, DVC would check the first run's outputs out of its cache (same params and code)
    resumed = repo_copy.dvc("repro", "-f", "-s", "train_cnn")
    assert "resuming from" in resumed.stdout + resumed.stderr
    history, weights = results(root)
    assert history == expected_history and same_weights(weights, expected_weights)

    client = mlflow_client(root)
    second_run = run_id(root)
    assert second_run != first_run  # the retrain trained afresh instead of re-logging into the old run
    assert sorted(m.step for m in client.get_metric_history(second_run, "val_acc")) == [1, 2, 3, 4]
    experiment = client.get_run(first_run).info.experiment_id
    for run in (first_run, second_run):
        models = client.search_logged_models([experiment], filter_string=f"source_run_id = '{run}'")
        assert [m.status for m in models] == [LoggedModelStatus.READY], run
    assert not temp_files(root) and [p.suffix for p in (root / "checkpoints").iterdir()] == [".done"]


def test_kill_before_the_first_epoch_and_during_model_logging_leave_one_run(repo_copy):
    root = repo_copy.root
    repo_copy.use_tiny_synthetic_data(epochs=2, train_size=1200)
    repo_copy.stage("download")
    state = kill_at(repo_copy, 0, PYTHON, "stages/train.py", "cnn")
    assert state["epoch"] == 0  # killed before the first epoch ended
    client = mlflow_client(root)
    [run] = all_runs(root)
    assert run.info.run_id == state["run_id"] and run.info.status == "RUNNING"
    # what a kill inside log_model leaves behind: a PENDING logged model of the run
    pending = client.create_logged_model(run.info.experiment_id, source_run_id=run.info.run_id, name="model")

    repo_copy.stage("train", "cnn")
    [run] = all_runs(root)
    assert run.info.run_id == state["run_id"] == run_id(root) and run.info.status == "FINISHED"
    assert client.get_logged_model(pending.model_id).status == LoggedModelStatus.FAILED
    # the description is complete whatever the kill interrupted: params, tags and the dataset input
    assert run.data.params["seed"] == "42" and run.data.tags["model"] == "cnn"
    assert run.data.tags["config_sha"] and [d.dataset.digest for d in run.inputs.dataset_inputs]


def test_code_change_after_a_finished_run_retrains(repo_copy):
    root = repo_copy.root
    repo_copy.use_tiny_synthetic_data(epochs=1)
    repo_copy.stage("download")
    repo_copy.stage("train", "cnn")
    _, before = results(root)
    augment = root / "src/seecam/augment.py"
    augment.write_text(augment.read_text() + "\nAugmenter.apply = lambda self, images, draw: "
                       "torch.zeros(images.shape, device=images.device)\n")
    rerun = repo_copy.stage("train", "cnn")
    assert "starting fresh" in rerun.stderr and "resuming" not in rerun.stderr
    _, after = results(root)
    assert not same_weights(before, after)


def test_model_code_change_with_a_checkpoint_starts_fresh_and_closes_the_old_run(repo_copy):
    root = repo_copy.root
    repo_copy.use_tiny_synthetic_data(epochs=3, train_size=1200)
    repo_copy.stage("download")
    old = kill_at(repo_copy, 1, PYTHON, "stages/train.py", "cnn")
    models = root / "src/seecam/models.py"
    models.write_text(models.read_text().replace("3, padding=1)", "3, padding=1, bias=False)"))

    rerun = repo_copy.stage("train", "cnn")
    assert f"checkpoint {old['path']} was made with other params, data or code; deleted" in rerun.stderr
    assert "starting fresh" in rerun.stderr and not old["path"].exists()
    assert "block1.conv.bias" not in results(root)[1]
    client = mlflow_client(root)
    assert client.get_run(old["run_id"]).info.status == "KILLED"  # no orphan RUNNING run
    assert client.get_run(run_id(root)).info.status == "FINISHED" and run_id(root) != old["run_id"]


@pytest.mark.parametrize("loss", ["run deleted", "store wiped"])
def test_resume_into_a_lost_run_warns_and_logs_every_epoch_to_a_new_run(repo_copy, loss):
    root = repo_copy.root
    repo_copy.use_tiny_synthetic_data(epochs=3, train_size=1200)
    repo_copy.stage("download")
    old = kill_at(repo_copy, 1, PYTHON, "stages/train.py", "cnn")
    if loss == "run deleted":
        mlflow_client(root).delete_run(old["run_id"])
    else:
        (root / "mlflow.db").unlink()

    rerun = repo_copy.stage("train", "cnn")
    assert f"warning: cnn: the checkpoint's MLflow run {old['run_id']} not found in sqlite:///" in rerun.stderr
    assert "resuming from" in rerun.stderr and "Traceback" not in rerun.stderr
    new = run_id(root)
    assert new != old["run_id"]
    assert sorted(m.step for m in mlflow_client(root).get_metric_history(new, "val_acc")) == [1, 2, 3]
    assert mlflow_client(root).get_run(new).data.params["seed"] == "42"


def test_sigterm_after_the_last_epoch_is_one_line_and_the_rerun_finishes_the_run_without_training(repo_copy):
    """A job limit stopping the stage in its epilogue (model file, curves, MLflow model, run.json): the run is
    marked KILLED, the last epoch's checkpoint stays, and the rerun trains nothing and finishes the same run."""
    root = repo_copy.root
    repo_copy.use_tiny_synthetic_data(epochs=2, train_size=1200)
    repo_copy.stage("download")
    process = repo_copy.spawn(PYTHON, "stages/train.py", "cnn")
    state = repo_copy.wait_for_checkpoint("cnn", 2, process)  # the last epoch is done: the epilogue runs
    os.killpg(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.strip().splitlines()[-1] == "stopped by SIGTERM; outputs were left as they were", stderr
    assert "Traceback" not in stderr
    client = mlflow_client(root)
    assert client.get_run(state["run_id"]).info.status == "KILLED"
    assert repo_copy.checkpoint("cnn")["epoch"] == 2
    # what a stop just after log_model leaves: a READY model in the run, which the rerun must not log again
    experiment = client.get_run(state["run_id"]).info.experiment_id
    logged = client.create_logged_model(experiment, source_run_id=state["run_id"], name="model")
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)

    def ready():
        return {f"models:/{m.model_id}" for m in client.search_logged_models(
            [experiment], filter_string=f"source_run_id = '{state['run_id']}'") if m.status == LoggedModelStatus.READY}

    before = ready()
    rerun = repo_copy.stage("train", "cnn")
    assert "after epoch 2" in rerun.stderr and " epoch 1/2" not in rerun.stderr and " epoch 2/2" not in rerun.stderr
    assert run_id(root) == state["run_id"] and client.get_run(state["run_id"]).info.status == "FINISHED"
    assert ready() == before  # reused, not logged a second time
    assert json.loads((root / "reports/train/cnn/run.json").read_text())["model_uri"] in before
    assert sorted(m.step for m in client.get_metric_history(state["run_id"], "val_acc")) == [1, 2]
    assert repo_copy.checkpoint("cnn") is None and (root / "models/cnn.pt").is_file()


def test_a_stopped_dvc_repro_stops_its_stage_which_keeps_its_checkpoint_and_the_rerun_resumes(repo_copy):
    """`kill <pid of dvc repro>` (TERM or KILL): dvc exited at once and its stage trained on as an orphan, and a
    rerun after it finished retrained from scratch into a second FINISHED run. Now the stage stops as on Ctrl-C."""
    root = repo_copy.root
    repo_copy.use_tiny_synthetic_data(epochs=3, train_size=600)
    first = None
    # DVC runs the stage through $SHELL: bash execs it; /bin/sh (Debian's dash, CI's when SHELL is unset) stays
    for sig, epoch, shell in ((signal.SIGTERM, 1, "/bin/bash"), (signal.SIGKILL, 2, "/bin/sh")):
        dvc = repo_copy.spawn(str(VENV_BIN / "dvc"), "repro", "train_cnn", SHELL=shell)
        state = repo_copy.wait_for_checkpoint("cnn", epoch, dvc)
        first = first or state["run_id"]
        [stage] = [p for p in psutil.Process(dvc.pid).children(recursive=True)
                   if p.cmdline()[-2:] == ["stages/train.py", "cnn"]]
        os.kill(dvc.pid, sig)  # dvc alone, as `kill` does: its stage is not in the signal's way
        began = time.monotonic()
        _, stderr = dvc.communicate(timeout=120)  # EOF once the stage, which writes to the same pipes, closes them
        assert dvc.returncode == -sig and gone(stage, timeout=5) and time.monotonic() - began < 20, stderr
        assert stderr.strip().splitlines()[-1] == "stopped by SIGTERM; outputs were left as they were", stderr
        assert "Traceback" not in stderr
        assert repo_copy.checkpoint("cnn")["epoch"] >= epoch and state["run_id"] == first
        assert mlflow_client(root).get_run(first).info.status == "KILLED", stderr

    rerun = repo_copy.dvc("repro", "train_cnn")
    assert "resuming from" in rerun.stderr
    [run] = [r for r in all_runs(root) if r.data.tags.get("model") == "cnn"]
    assert run.info.run_id == first == run_id(root) and run.info.status == "FINISHED"
    assert sorted(m.step for m in mlflow_client(root).get_metric_history(first, "val_acc")) == [1, 2, 3]
