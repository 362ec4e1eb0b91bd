"""`seecam ui`'s choices on a real MLflow SQLite store: which runs the compare link opens, and run colours."""

import json

import mlflow
import pytest

from seecam.colours import COLOURS
from seecam.tracking.store import RunInfo
from seecam.ui import RUN_COLOUR_TAG, colour_runs, compare_run_ids, compare_url, evaluate_records
from seecam.verdict.record import ModelRun, Pair
from seecam.verdict.summary import summarize


@pytest.fixture
def store(mlflow_experiment, tmp_path, monkeypatch) -> str:
    monkeypatch.chdir(tmp_path)  # run.json and verdict.json are read from the working directory
    return mlflow_experiment


def training_run(experiment: str, model: str, seed: int, sha: str = "aaa", exp_name: str = "", **tags: str) -> str:
    tags = {"model": model, "seed": str(seed), "config_sha": sha} | tags | ({"dvc_exp_name": exp_name} if exp_name
                                                                              else {})
    client = mlflow.MlflowClient()
    run = client.create_run(experiment, tags=tags)
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def workspace_runs(experiment: str, tmp_path) -> list[str]:
    ids = []
    for model in ("cnn", "se"):
        run_id = training_run(experiment, model, 42)
        RunInfo(run_id, experiment, "seecam", mlflow.get_tracking_uri()).save(
            tmp_path / f"reports/train/{model}/run.json")
        ids.append(run_id)
    return ids


def test_compare_opens_the_workspaces_runs_when_there_is_no_sweep(store, tmp_path):
    ids = workspace_runs(store, tmp_path)
    assert compare_run_ids(store, ["cnn", "se"]) == (ids, "this workspace's training runs")


def test_compare_opens_the_latest_sweeps_runs_though_the_workspaces_are_newer(store, tmp_path):
    """Issue 26: "the latest CNN and SE runs" opened the seed-42 runs, though the sweep's were newer."""
    for seed in (0, 1):
        for model in ("cnn", "se"):
            training_run(store, model, seed, sha="old", exp_name=f"seed-{seed}-000000")
    swept = [training_run(store, model, seed, sha="new", exp_name=f"seed-{seed}-111111")
             for seed in (1, 0) for model in ("se", "cnn")]
    workspace_runs(store, tmp_path)
    ids, what = compare_run_ids(store, ["cnn", "se"])
    assert ids == [swept[3], swept[2], swept[1], swept[0]]  # by seed, baseline first
    assert what == "the latest sweep's 4 runs (config_sha new)"


def test_compare_opens_the_latest_verdicts_runs_first(store, tmp_path):
    def run(model, seed, acc):
        return ModelRun(training_run(store, model, seed, exp_name=f"seed-{seed}-222222"), model, seed,
                        {"test_acc": acc})

    pairs = [Pair(s, run("cnn", s, 0.5), run("se", s, 0.5 + d)) for s, d in enumerate([0.01, -0.02, 0.03])]
    verdict = summarize(pairs, "cnn", "se", "ccc")
    (tmp_path / "reports/verdict").mkdir(parents=True)
    (tmp_path / "reports/verdict/verdict.json").write_text(json.dumps(verdict.to_json()))
    training_run(store, "cnn", 7, exp_name="seed-7-333333")  # a newer sweep that no verdict pooled yet
    ids, what = compare_run_ids(store, ["cnn", "se"])
    assert ids == [r.run_id for p in pairs for r in (p.baseline, p.candidate)]
    assert what == "the latest verdict's 6 runs (3 seeds, config_sha ccc)"


def test_runs_are_coloured_by_model_and_a_colour_picked_in_the_ui_stays(store):
    cnn, se = training_run(store, "cnn", 0), training_run(store, "se", 0)
    picked = training_run(store, "se", 1, **{RUN_COLOUR_TAG: "#000000"})
    untagged = mlflow.MlflowClient().create_run(store).info.run_id  # a verdict run, say: no model, no colour
    colour_runs(store, ["cnn", "se"])
    colour = {run_id: mlflow.get_run(run_id).data.tags.get(RUN_COLOUR_TAG) for run_id in (cnn, se, picked, untagged)}
    assert colour == {cnn: COLOURS[0], se: COLOURS[1], picked: "#000000", untagged: None}
    assert COLOURS[:2] == ("#1f77b4", "#ff7f0e")  # matplotlib's tab:blue and tab:orange, as the report draws them


def test_compare_url_names_the_runs_and_the_experiment():
    assert compare_url("http://127.0.0.1:5000", "1", ["a", "b"]) == \
        "http://127.0.0.1:5000/#/compare-runs?runs=%5B%22a%22%2C%22b%22%5D&experiments=%5B%221%22%5D"


def test_compare_opens_the_evaluate_records_where_test_acc_lives_when_every_run_has_one(store, tmp_path):
    """Issue 26 + 24: the training runs' compare view opens on train_loss; test_acc lives on their evaluate records
    (child runs), whose compare view opens on it. Only records of the workspace's evaluate configuration count."""
    from seecam.tracking.stages import PARENT, STAGE, StageConfig

    config = StageConfig("evaluate", {"evaluate.batch_size": "500"}, "code")
    other = StageConfig("evaluate", {"evaluate.batch_size": "100"}, "code")
    ids = workspace_runs(store, tmp_path)

    def record(parent: str, stage_config: StageConfig) -> str:
        return training_run(store, "cnn", 42, **{PARENT: parent, STAGE: "evaluate",
                                                  "stage_config_sha": stage_config.sha})

    mine = [record(run_id, config) for run_id in ids]
    record(ids[0], other)  # a newer record of another evaluate configuration is not the workspace's
    assert evaluate_records(store, ids, config) == mine
    assert evaluate_records(store, [*ids, training_run(store, "se", 7)], config) is None  # one run has none
