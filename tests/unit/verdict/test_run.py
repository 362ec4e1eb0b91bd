"""`seecam verdict` end to end on a real MLflow SQLite store filled with training-like runs (no training):
its outputs, its `verdict` MLflow run, and what it refuses."""

import json

import mlflow
import numpy as np
import pytest
from mlflow.entities import Param

from seecam import stats
from seecam.errors import SeecamError
from seecam.tracking.training import config_params
from seecam.verdict.run import run_verdict
from verdict_runs import SHA, log_run, sweep


def test_three_seeds_give_every_output_and_a_linked_verdict_run(store, tmp_path):
    params, experiment = store
    sweep(experiment, {0: (0.50, 0.55), 1: (0.60, 0.70), 2: (0.40, 0.50)}, explained=True)
    result = run_verdict(params, SHA[:6], "cnn", "se", tmp_path / "verdict")
    diffs = [0.05, 0.10, 0.10]
    expected = stats.t_interval(diffs)
    assert result.config_sha == SHA and result.seeds == 3
    assert (result.acc_diff_t_low, result.acc_diff_t_high) == pytest.approx((expected.low, expected.high))
    assert result.cohens_dz == pytest.approx(stats.cohens_dz(diffs))
    assert result.sentence == "SE better"
    assert result.pooled_images.images == 20
    assert result.per_class_diff["cat"].median == pytest.approx(np.median(diffs))
    assert result.faithfulness["cnn"]["deletion_auc"].mean == pytest.approx(0.21)
    for name in ("verdict.json", "verdict.md", "seeds.png"):
        assert (tmp_path / "verdict" / name).stat().st_size > 0
    assert json.loads((tmp_path / "verdict" / "verdict.json").read_text())["sentence"] == "SE better"
    run = mlflow.get_run(result.mlflow_run_id)
    assert run.data.tags["config_sha"] == SHA and run.info.experiment_id == experiment
    linked = {v for k, v in run.data.params.items() if k.startswith("run.")}
    assert linked == {r for seed in result.per_seed.values() for r in seed.runs.values()} and len(linked) == 6
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "verdict")}
    assert artifacts == {"verdict/verdict.json", "verdict/verdict.md", "verdict/seeds.png"}


def test_identical_accuracies_are_defined(store, tmp_path):
    params, experiment = store
    sweep(experiment, {0: (0.5, 0.5), 1: (0.6, 0.6)})
    result = run_verdict(params, SHA, "cnn", "se", tmp_path)
    assert (result.acc_diff_mean, result.acc_diff_t_low, result.acc_diff_t_high) == (0, 0, 0)
    assert result.cohens_dz == 0 and result.seeds_for_80_power is None
    assert result.sentence == "not resolved with 2 seeds; the seeds show no difference to resolve"


def test_fewer_than_two_pairs_or_a_missing_model_is_refused(store, tmp_path):
    params, experiment = store
    sweep(experiment, {0: (0.5, 0.6)})
    log_run(experiment, "cnn", 1, 0.5)
    with pytest.raises(SeecamError, match=r"1 paired seed\(s\) .*seeds 1 lack one model.*seecam sweep"):
        run_verdict(params, SHA, "cnn", "se", tmp_path)
    assert not (tmp_path / "verdict.json").exists()


def test_the_sweep_a_refusal_names_is_of_the_refused_configuration(store, tmp_path):
    """A sweep run with `-S train.epochs=1` in a workspace of 2 epochs, one seed short: the refusal named
    `seecam sweep --seeds 0-2 --run -j 2`, which swept another configuration (2 epochs) and never made this
    one's second pair. It names the overrides that make the workspace's params the pooled runs' own."""
    params, experiment = store
    workspace = config_params(params)
    for model in ("cnn", "se"):
        run_id = log_run(experiment, model, 0, 0.5)
        mlflow.MlflowClient().log_batch(run_id, params=[
            Param(k, v) for k, v in (workspace | {"train.epochs": "1", "data.split_seed": "7"}).items()])
    with pytest.raises(SeecamError) as refused:
        run_verdict(params, SHA, "cnn", "se", tmp_path)
    assert str(refused.value).endswith(
        "queue seeds of this configuration with `seecam sweep --seeds 0-2 -S train.epochs=1 -S data.split_seed=7 "
        "--run -j 2`"), refused.value


def test_a_rerun_for_the_same_runs_replaces_the_verdict_run_in_place(store, tmp_path):
    params, experiment = store
    sweep(experiment, {0: (0.50, 0.55), 1: (0.60, 0.70)})
    first = run_verdict(params, SHA, "cnn", "se", tmp_path)
    ended = mlflow.get_run(first.mlflow_run_id).info.end_time
    again = run_verdict(params, SHA, "cnn", "se", tmp_path)
    verdicts = mlflow.search_runs([experiment], "tags.verdict = 'true'", output_format="list")
    assert [r.info.run_id for r in verdicts] == [first.mlflow_run_id] == [again.mlflow_run_id]
    assert verdicts[0].info.end_time == ended and verdicts[0].info.run_name == "verdict · SE vs CNN · 2 seeds"
    assert len(mlflow.MlflowClient().get_metric_history(first.mlflow_run_id, "acc_diff_mean")) == 1
    log_run(experiment, "cnn", 2, 0.4)
    log_run(experiment, "se", 2, 0.5)  # a new seed: another verdict, another run
    assert run_verdict(params, SHA, "cnn", "se", tmp_path).mlflow_run_id != first.mlflow_run_id
