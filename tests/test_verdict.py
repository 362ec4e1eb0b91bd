"""`seecam verdict` on a real MLflow SQLite store filled with training-like runs (no training)."""

import json

import mlflow
import numpy as np
import pytest

from seecam import stats
from seecam.errors import SeecamError
from seecam.params import parse_params
from seecam.tracking import CORRECT_ARTIFACT
from seecam.verdict import ModelRun, Pair, run_verdict, summarize

SHA = "abcdef0123456789"
CLASSES = ("cat", "dog")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("seecam", artifact_location=(tmp_path / "art").as_uri())
    return parse_params({"tracking": {"uri": uri}}), experiment


def log_run(experiment: str, model: str, seed: int, acc: float, sha: str = SHA, status: str = "FINISHED",
            evaluated: bool = True, explained: bool = False, images: int = 20) -> str:
    with mlflow.start_run(experiment_id=experiment, run_name=model,
                          tags={"model": model, "seed": str(seed), "config_sha": sha}) as run:
        if evaluated:
            mlflow.log_metrics({"test_acc": acc, "test_acc/cat": acc + 0.05, "test_acc/dog": acc - 0.05})
            right = round(acc * images)
            mlflow.log_text("1" * right + "0" * (images - right), CORRECT_ARTIFACT)
        if explained:
            mlflow.log_metrics({"explain/deletion_auc": 0.2 + seed / 100, "explain/insertion_auc": 0.6})
    if status != "FINISHED":
        mlflow.MlflowClient().set_terminated(run.info.run_id, status)
    return run.info.run_id


def sweep(experiment: str, accs: dict[int, tuple[float, float]], **kwargs) -> None:
    for seed, (cnn, se) in accs.items():
        log_run(experiment, "cnn", seed, cnn, **kwargs)
        log_run(experiment, "se", seed, se, **kwargs)


def test_three_seeds_give_every_output_and_a_linked_verdict_run(store, tmp_path):
    params, experiment = store
    sweep(experiment, {0: (0.50, 0.55), 1: (0.60, 0.70), 2: (0.40, 0.50)}, explained=True)
    result = run_verdict(params, SHA[:6], "cnn", "se", tmp_path / "verdict")
    diffs = [0.05, 0.10, 0.10]
    expected = stats.t_interval(diffs)
    assert result["config_sha"] == SHA and result["seeds"] == 3
    assert (result["acc_diff_t_low"], result["acc_diff_t_high"]) == pytest.approx((expected.low, expected.high))
    assert result["cohens_dz"] == pytest.approx(stats.cohens_dz(diffs))
    assert result["sentence"] == "SE better"
    assert result["pooled_images"]["images"] == 20
    assert result["per_class_diff"]["cat"]["mean"] == pytest.approx(np.mean(diffs))
    assert result["faithfulness"]["cnn"]["deletion_auc"]["mean"] == pytest.approx(0.21)
    for name in ("verdict.json", "verdict.md", "seeds.png"):
        assert (tmp_path / "verdict" / name).stat().st_size > 0
    assert json.loads((tmp_path / "verdict" / "verdict.json").read_text())["sentence"] == "SE better"
    run = mlflow.get_run(result["mlflow_run_id"])
    assert run.data.tags["config_sha"] == SHA and run.info.experiment_id == experiment
    linked = {v for k, v in run.data.params.items() if k.startswith("run.")}
    assert linked == {r for seed in result["per_seed"].values() for r in seed["runs"].values()} and len(linked) == 6
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "verdict")}
    assert artifacts == {"verdict/verdict.json", "verdict/verdict.md", "verdict/seeds.png"}


def test_failed_deleted_and_superseded_runs_are_skipped_and_counted(store, tmp_path):
    params, experiment = store
    sweep(experiment, {0: (0.50, 0.50), 1: (0.60, 0.61)})
    log_run(experiment, "se", 1, 0.99, status="FAILED")
    mlflow.delete_run(log_run(experiment, "cnn", 2, 0.1))
    log_run(experiment, "cnn", 0, 0.52)  # a rerun of seed 0: the latest one counts
    result = run_verdict(params, SHA, "cnn", "se", tmp_path)
    assert result["skipped"] == {"failed": 1, "deleted": 1, "superseded": 1, "unpaired": 0}
    assert result["per_seed"]["0"]["cnn"] == 0.52
    assert result["sentence"].startswith("not resolved with 2 seeds; about ")


def test_identical_accuracies_are_defined(store, tmp_path):
    params, experiment = store
    sweep(experiment, {0: (0.5, 0.5), 1: (0.6, 0.6)})
    result = run_verdict(params, SHA, "cnn", "se", tmp_path)
    assert (result["acc_diff_mean"], result["acc_diff_t_low"], result["acc_diff_t_high"]) == (0, 0, 0)
    assert result["cohens_dz"] == 0 and result["seeds_for_80_power"] is None
    assert result["sentence"] == "not resolved with 2 seeds; the seeds show no difference to resolve"


def test_fewer_than_two_pairs_or_a_missing_model_is_refused(store, tmp_path):
    params, experiment = store
    sweep(experiment, {0: (0.5, 0.6)})
    log_run(experiment, "cnn", 1, 0.5)
    with pytest.raises(SeecamError, match=r"1 paired seed\(s\) .*seeds 1 lack one model.*seecam sweep"):
        run_verdict(params, SHA, "cnn", "se", tmp_path)
    assert not (tmp_path / "verdict.json").exists()


def test_mixed_configurations_are_refused(store, tmp_path):
    params, experiment = store
    sweep(experiment, {0: (0.5, 0.6), 1: (0.5, 0.6)})
    sweep(experiment, {0: (0.5, 0.6), 1: (0.5, 0.6)}, sha="abcdef9999999999")
    with pytest.raises(SeecamError, match="matches mixed configurations .*pass the full config_sha"):
        run_verdict(params, "abcdef", "cnn", "se", tmp_path)
    assert run_verdict(params, SHA, "cnn", "se", tmp_path)["seeds"] == 2
    with pytest.raises(SeecamError, match="--config-sha must be 1-16 hex digits"):
        run_verdict(params, "ab' OR '1", "cnn", "se", tmp_path)


def test_runs_without_test_metrics_name_the_stage(store, tmp_path):
    params, experiment = store
    sweep(experiment, {0: (0.5, 0.6)})
    sweep(experiment, {1: (0.5, 0.6)}, evaluated=False)
    with pytest.raises(SeecamError, match=r"runs without test metrics: cnn seed 1 .*dvc repro evaluate"):
        run_verdict(params, SHA, "cnn", "se", tmp_path)


def test_constant_difference_without_per_image_vectors():
    def run(model, seed, acc):
        return ModelRun(f"{model}{seed}", model, seed, {"test_acc": acc})

    pairs = [Pair(s, run("cnn", s, 0.5), run("se", s, 0.6)) for s in (0, 1)]
    result = summarize(pairs, "cnn", "se")
    assert result["sentence"] == "SE better" and result["cohens_dz"] is None and result["power"] is None
    assert "skipped" in result["pooled_images"]
