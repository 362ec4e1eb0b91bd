"""Later stages keep a record per identity: a child run of the training run, found again by its identity, never
overwritten by another configuration's numbers; a training run that is gone gets a record of its own."""

import itertools
from dataclasses import replace

import mlflow
import pytest

from seecam.params import ExplainParams, TrackingParams
from seecam.tracking.stages import (
    PARENT,
    StageConfig,
    log_values,
    missing_records,
    stage_record,
    stage_records,
)
from seecam.tracking.store import RunInfo, open_experiment, tracking_uri
from seecam.tracking.training import run_name

RESOLVED = {"device": "cpu", "data_sha256": "d"}
TRAINED = {"model": "se", "seed": "3", "config_sha": "c" * 16, "model_sha": "m" * 16}


@pytest.fixture
def trained(monkeypatch, tmp_path):
    """A FINISHED training run of `se` that reports/train/se/run.json names, in a fresh store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    tracking = TrackingParams(experiment="t")
    experiment_id = open_experiment(tracking)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name("se", 3), tags=TRAINED) as run:
        pass
    RunInfo(run.info.run_id, experiment_id, "t", tracking_uri(tracking)).save(tmp_path / "reports/train/se/run.json")
    return run.info.run_id, experiment_id


def explain(layer: str) -> StageConfig:
    return StageConfig("explain", {"explain.layer": layer}, "code1")


def test_a_change_and_its_revert_leave_each_configurations_record_with_its_own_numbers(trained):
    """Finding 1: explain.layer block2, then back to block3; the block3 record must hold block3's numbers."""
    parent, experiment_id = trained
    logged = {}
    for layer, auc in (("block3", 0.1597), ("block2", 0.1409), ("block3", 0.1597)):
        with stage_record("se", explain(layer), RESOLVED) as record:
            log_values(record, {"explain/deletion_auc": auc})
        logged.setdefault(layer, set()).add(record)
    assert all(len(records) == 1 for records in logged.values())  # a rerun finds its own record again
    (block3,), (block2,) = logged["block3"], logged["block2"]
    assert block3 != block2
    for record, layer, auc in ((block3, "block3", 0.1597), (block2, "block2", 0.1409)):
        run = mlflow.get_run(record)
        assert run.data.metrics["explain/deletion_auc"] == auc and run.data.params["explain.layer"] == layer
        assert run.info.status == "FINISHED" and run.info.run_name == "se · seed 3 · explain"
        assert run.data.tags[PARENT] == parent and run.data.tags["seecam.stage"] == "explain"
        assert {k: run.data.tags[k] for k in TRAINED} == TRAINED  # filterable like the training runs
    training = mlflow.get_run(parent)
    assert "explain/deletion_auc" not in training.data.metrics  # the training run keeps training numbers only
    assert stage_records(experiment_id, [parent], explain("block3"))[parent].info.run_id == block3
    assert stage_records(experiment_id, [parent], explain("block2"))[parent].info.run_id == block2
    assert stage_records(experiment_id, [parent], replace(explain("block3"), code_sha256="code2")) == {}


def test_the_device_and_the_training_run_are_part_of_a_records_identity_not_of_its_configuration(trained,
                                                                                                  monkeypatch):
    parent, experiment_id = trained
    # MLflow stamps a run's start in whole milliseconds: a clock one second on at every reading orders the two
    # records without waiting (a real clock may give both the same millisecond)
    ticks = itertools.count(2_000_000_000_000, 1000)
    monkeypatch.setattr("mlflow.tracking._tracking_service.client.get_current_time_millis", lambda: next(ticks))
    with stage_record("se", explain("block3"), RESOLVED) as on_cpu:
        log_values(on_cpu, {"explain/deletion_auc": 0.16})
    with stage_record("se", explain("block3"), RESOLVED | {"device": "cuda"}) as on_cuda:
        log_values(on_cuda, {"explain/deletion_auc": 0.16})
    assert on_cpu != on_cuda
    started = [mlflow.get_run(run).info.start_time for run in (on_cpu, on_cuda)]
    assert 2_000_000_000_000 <= started[0] < started[1]  # the fake clock stamped them
    assert stage_records(experiment_id, [parent], explain("block3"))[parent].info.run_id == on_cuda  # the latest


def test_a_record_of_a_lost_training_run_is_its_own_and_the_report_is_told(trained, capsys):
    parent, experiment_id = trained
    with stage_record("se", explain("block3"), RESOLVED) as record:
        log_values(record, {"explain/deletion_auc": 0.16})
    assert missing_records(["se"], [explain("block3"), StageConfig("evaluate", {}, "code1")]) == [("se", "evaluate")]
    mlflow.MlflowClient().delete_run(parent)
    with stage_record("se", explain("block3"), RESOLVED) as replacement:
        pass
    assert replacement != record
    assert f"training run {parent} not found" in capsys.readouterr().err
    run = mlflow.get_run(replacement)
    assert run.data.tags["model"] == "se" and PARENT not in run.data.tags
    assert missing_records(["se"], [explain("block3")]) == [("se", "training")]


def test_a_stage_config_is_its_params_and_its_codes_behaviour():
    base = StageConfig.of("explain", ExplainParams())
    assert base.params["explain.layer"] == "block3" and len(base.sha) == 16
    assert StageConfig.of("explain", ExplainParams(layer="block2")).sha != base.sha
    assert replace(base, code_sha256="other").sha != base.sha
    assert StageConfig.of("evaluate", ExplainParams()).sha != base.sha  # another stage's code
    assert base.record_sha("run1", RESOLVED) != base.record_sha("run2", RESOLVED)
