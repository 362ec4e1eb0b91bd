"""Later stages add to the training run by its id: a run that is gone gets a new one, a finished one stays so."""

import time

import mlflow

from seecam.params import TrackingParams
from seecam.tracking.stages import log_values, model_run
from seecam.tracking.store import RunInfo, open_experiment, tracking_uri
from seecam.tracking.training import run_name


def test_later_stage_reopens_the_training_run_or_says_it_is_gone(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    tracking = TrackingParams(experiment="t")
    experiment_id = open_experiment(tracking)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        pass
    info = RunInfo(run.info.run_id, experiment_id, "t", tracking_uri(tracking))
    info.save(tmp_path / "reports/train/se/run.json")

    with model_run("se", "evaluate") as reopened:
        assert reopened == run.info.run_id

    mlflow.MlflowClient().delete_run(run.info.run_id)
    with model_run("se", "evaluate") as replacement:
        assert replacement != run.info.run_id
    assert f"training run {run.info.run_id} not found" in capsys.readouterr().err
    assert mlflow.get_run(replacement).data.tags["model"] == "se"


def test_reopening_a_finished_run_keeps_its_status_and_duration(monkeypatch, tmp_path):
    """evaluate, explain and report reopen the training run: its Duration in the MLflow UI stays the training's."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    tracking = TrackingParams(experiment="t")
    experiment_id = open_experiment(tracking)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name("se", 3)) as run:
        pass
    trained = mlflow.get_run(run.info.run_id).info
    RunInfo(run.info.run_id, experiment_id, "t", tracking_uri(tracking)).save(tmp_path / "reports/train/se/run.json")
    for stage in ("evaluate", "explain"):
        time.sleep(0.05)
        with model_run("se", stage) as run_id:
            log_values(run_id, {"x": 1.0})
    reopened = mlflow.get_run(run.info.run_id)
    assert (reopened.info.status, reopened.info.end_time) == ("FINISHED", trained.end_time)
    assert reopened.info.run_name == "se · seed 3" and reopened.data.tags["explain_done"] == "true"
    assert reopened.data.metrics["x"] == 1.0  # logged to the training run itself
