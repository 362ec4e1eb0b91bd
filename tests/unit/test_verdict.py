"""`seecam verdict` on a real MLflow SQLite store filled with training-like runs (no training)."""

import json
from dataclasses import replace

import mlflow
import numpy as np
import pytest
from mlflow.entities import Param

from helpers import REPO
from seecam import stats
from seecam.errors import SeecamError
from seecam.params import EvaluateParams, ExplainParams, parse_params
from seecam.tracking.stages import CORRECT_ARTIFACT, PARENT, STAGE, StageConfig
from seecam.tracking.store import RunInfo
from seecam.tracking.training import config_params
from seecam.verdict import ModelRun, Pair, Verdict, markdown, run_verdict, summarize

SHA = "abcdef0123456789"
CLASSES = ("cat", "dog")
EVALUATE = StageConfig.of("evaluate", EvaluateParams())  # the workspace's, with the repo's params and code
EXPLAIN = StageConfig.of("explain", ExplainParams())


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("seecam", artifact_location=(tmp_path / "art").as_uri())
    return parse_params({"tracking": {"uri": uri}}), experiment


def code_only_workspace(root, monkeypatch) -> None:
    """cwd = a workspace with the repo's code and no data, no outputs (a clone that pulled nothing)."""
    monkeypatch.chdir(root)
    for name in ("dvc.yaml", "src", "stages"):
        (root / name).symlink_to(REPO / name)


def record(experiment: str, parent: str, config: StageConfig, metrics: dict[str, float], text: str = "") -> str:
    """A later stage's record of `config` under training run `parent`, as tracking.stages writes it."""
    tags = {PARENT: parent, STAGE: config.stage, "stage_config_sha": config.sha, "stage_sha": f"{parent}{config.sha}"}
    with mlflow.start_run(experiment_id=experiment, tags=tags, nested=True) as run:
        mlflow.log_metrics(metrics)
        if text:
            mlflow.log_text(text, CORRECT_ARTIFACT)
    return run.info.run_id


def log_run(experiment: str, model: str, seed: int, acc: float, sha: str = SHA, status: str = "FINISHED",
            evaluated: bool = True, explained: bool = False, images: int = 20, exp_name: str = "",
            model_sha: str = "", explain: StageConfig = EXPLAIN, auc: float | None = None) -> str:
    tags = {"model": model, "seed": str(seed), "config_sha": sha, "model_sha": model_sha or f"{model}-net"}
    tags |= {"dvc_exp_name": exp_name} if exp_name else {}
    with mlflow.start_run(experiment_id=experiment, run_name=model, tags=tags) as run:
        pass
    if status != "FINISHED":
        mlflow.MlflowClient().set_terminated(run.info.run_id, status)
    if evaluated:
        right = round(acc * images)
        record(experiment, run.info.run_id, EVALUATE, {"test_acc": acc, "test_acc/cat": acc + 0.05,
                                                       "test_acc/dog": acc - 0.05},
               "1" * right + "0" * (images - right))
    if explained:
        record(experiment, run.info.run_id, explain,
               {"explain/deletion_auc": 0.2 + seed / 100 if auc is None else auc, "explain/insertion_auc": 0.6})
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


# verdict.json is a DVC metrics file (`dvc metrics show/diff`) and the report's input: its keys are a contract
VERDICT_KEYS = {"config_sha", "baseline", "candidate", "seeds", "wins", "plain", "sentence", "acc_diff_mean",
                "acc_diff_t_low", "acc_diff_t_high", "acc_diff_bootstrap_low", "acc_diff_bootstrap_high", "cohens_dz",
                "power", "seeds_for_80_power", "per_seed", "pooled_images", "experiments", "per_class_diff",
                "faithfulness", "skipped", "mlflow_run_id", "model_shas", "evaluate_config_sha",
                "explain_config_sha", "explain_layer"}


def test_verdict_json_keeps_its_keys_and_reads_back_as_the_same_verdict(store, tmp_path):
    params, experiment = store
    sweep(experiment, {0: (0.50, 0.55), 1: (0.60, 0.70), 2: (0.40, 0.50)}, explained=True)
    result = run_verdict(params, SHA, "cnn", "se", tmp_path)
    written = json.loads((tmp_path / "verdict.json").read_text())
    assert set(written) == VERDICT_KEYS
    assert set(written["per_seed"]["0"]) == {"cnn", "se", "diff", "runs"}
    assert set(written["pooled_images"]) == {"mean", "low", "high", "images"}
    assert set(written["per_class_diff"]["cat"]) == {"median", "low", "high", "coverage", "reliable"}
    assert set(written["faithfulness"]["se"]["deletion_auc"]) == {"mean", "low", "high"}
    assert Verdict.load(tmp_path / "verdict.json") == result


def test_no_verdict_yet_reads_as_none(tmp_path):
    assert Verdict.load(tmp_path / "verdict.json") is None  # no file
    (tmp_path / "verdict.json").write_text('{"config_sha": null, "seeds": 0, "sentence": "no verdict yet"}')
    assert Verdict.load(tmp_path / "verdict.json") is None  # the placeholder in git


def test_failed_deleted_and_superseded_runs_are_skipped_and_counted(store, tmp_path):
    params, experiment = store
    sweep(experiment, {0: (0.50, 0.50), 1: (0.60, 0.61)})
    log_run(experiment, "se", 1, 0.99, status="FAILED")
    mlflow.delete_run(log_run(experiment, "cnn", 2, 0.1))
    log_run(experiment, "cnn", 0, 0.52)  # a rerun of seed 0: the latest one counts
    result = run_verdict(params, SHA, "cnn", "se", tmp_path)
    assert {k: result.skipped[k] for k in ("failed", "deleted", "superseded", "unpaired")} == {
        "failed": 1, "deleted": 1, "superseded": 1, "unpaired": 0}
    assert result.per_seed["0"].baseline == 0.52
    assert result.sentence.startswith("not resolved with 2 seeds; about ")


@pytest.mark.parametrize("sha", [SHA, None])
def test_runs_with_malformed_tags_are_skipped_and_counted_never_a_crash(store, tmp_path, sha):
    """Tags are data anyone can write: one run whose seed was not an integer crashed the verdict (ValueError)."""
    params, experiment = store
    sweep(experiment, {0: (0.50, 0.55), 1: (0.60, 0.70)})
    for tags in ({"model": "cnn", "seed": "forty-two", "config_sha": SHA},
                 {"model": "se", "seed": "", "config_sha": SHA},
                 {"model": "cnn", "seed": "3", "config_sha": SHA + "-not-hex"},
                 {"seed": "4", "config_sha": SHA},
                 {"model": "Res Net", "seed": "5", "config_sha": SHA}):  # no model name (params.MODEL_NAME)
        with mlflow.start_run(experiment_id=experiment, tags=tags):
            mlflow.log_metric("test_acc", 0.9)
    result = run_verdict(params, sha, "cnn", "se", tmp_path)
    assert result.config_sha == SHA and result.seeds == 2
    assert result.skipped == {"malformed": 5, "superseded": 0, "unpaired": 0,
                              "no explain record of this configuration (faithfulness left out)": 4}
    assert "skipped runs: 5 malformed" in (tmp_path / "verdict.md").read_text()


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


def test_mixed_configurations_are_refused(store, tmp_path):
    params, experiment = store
    sweep(experiment, {0: (0.5, 0.6), 1: (0.5, 0.6)})
    sweep(experiment, {0: (0.5, 0.6), 1: (0.5, 0.6)}, sha="abcdef9999999999")
    with pytest.raises(SeecamError, match="matches mixed configurations .*pass the full config_sha"):
        run_verdict(params, "abcdef", "cnn", "se", tmp_path)
    assert run_verdict(params, SHA, "cnn", "se", tmp_path).seeds == 2
    with pytest.raises(SeecamError, match="--config-sha must be 1-16 hex digits"):
        run_verdict(params, "ab' OR '1", "cnn", "se", tmp_path)


def test_runs_without_a_record_of_the_workspaces_evaluate_configuration_are_skipped_or_named(store, tmp_path):
    params, experiment = store
    sweep(experiment, {0: (0.5, 0.6), 1: (0.5, 0.6)})
    sweep(experiment, {2: (0.5, 0.6)}, evaluated=False)
    result = run_verdict(params, SHA, "cnn", "se", tmp_path)
    assert result.seeds == 2 and result.skipped["no evaluate record of this configuration"] == 2
    other = replace(params, evaluate=replace(params.evaluate, bootstrap_samples=10))
    with pytest.raises(SeecamError, match=r"no training run of config_sha abcdef0123456789 has a record of this "
                                          r"workspace's evaluate configuration .*`dvc repro -f -s evaluate`") as error:
        run_verdict(other, SHA, "cnn", "se", tmp_path)
    assert "\n" not in str(error.value)


def test_a_change_and_its_revert_pool_only_the_records_of_the_workspaces_explain_configuration(store, tmp_path):
    """Finding 1: seed 1 was explained at block2 after block3; the workspace's block3 pools block3's numbers."""
    params, experiment = store
    block2 = StageConfig.of("explain", ExplainParams(layer="block2"))
    for seed, auc in ((0, 0.16), (1, 0.17)):
        for model in ("cnn", "se"):
            run = log_run(experiment, model, seed, 0.5, explained=True, auc=auc)
            if seed == 1:
                record(experiment, run, block2, {"explain/deletion_auc": 0.14, "explain/insertion_auc": 0.5})
    result = run_verdict(params, SHA, "cnn", "se", tmp_path)
    assert result.faithfulness["cnn"]["deletion_auc"].mean == pytest.approx(0.165)  # never the block2 0.14
    assert (result.explain_layer, result.explain_config_sha) == ("block3", EXPLAIN.sha)
    assert f"explain configuration {EXPLAIN.sha} (explain.layer block3)" in (tmp_path / "verdict.md").read_text()
    at_block2 = run_verdict(replace(params, explain=ExplainParams(layer="block2")), SHA, "cnn", "se", tmp_path)
    assert at_block2.faithfulness == {"cnn": {}, "se": {}}  # seed 0 has no block2 record: left out, and said
    assert at_block2.skipped["no explain record of this configuration (faithfulness left out)"] == 2
    assert at_block2.mlflow_run_id != result.mlflow_run_id  # another configuration's verdict, another run


def test_a_model_with_two_networks_in_a_pool_takes_the_workspaces_or_is_refused(store, tmp_path, monkeypatch):
    params, experiment = store
    sweep(experiment, {0: (0.5, 0.6), 1: (0.5, 0.6)})
    for seed in (0, 1, 2):
        log_run(experiment, "se", seed, 0.7, model_sha="se-r8")  # -S models.se.reduction=8: same config_sha
    log_run(experiment, "cnn", 2, 0.5)
    with pytest.raises(SeecamError, match=r"se has runs of 2 networks in config_sha abcdef0123456789 \(model_sha "
                                          r"se-net, se-r8\) and the workspace's reports/train/se/run.json names none"):
        run_verdict(params, SHA, "cnn", "se", tmp_path)
    code_only_workspace(tmp_path, monkeypatch)
    RunInfo("r", experiment, "seecam", "", model_sha="se-r8").save(tmp_path / "reports/train/se/run.json")
    result = run_verdict(params, SHA, "cnn", "se", tmp_path / "verdict")
    assert result.seeds == 3 and result.model_shas == {"cnn": "cnn-net", "se": "se-r8"}
    assert result.skipped["another model_sha"] == 2 and result.per_seed["0"].candidate == 0.7


def test_constant_difference_without_per_image_vectors():
    def run(model, seed, acc):
        return ModelRun(f"{model}{seed}", model, seed, {"test_acc": acc})

    pairs = [Pair(s, run("cnn", s, 0.5), run("se", s, 0.6)) for s in (0, 1)]
    result = summarize(pairs, "cnn", "se", SHA)
    assert result.sentence == "SE better" and result.cohens_dz is None and result.power is None
    assert result.pooled_images.skipped


def test_per_class_intervals_stay_within_the_seeds_differences():
    """Three seeds whose per-class differences spread widely: a t interval would reach about ±110 points."""
    def run(model, seed, acc, cat):
        return ModelRun(f"{model}{seed}", model, seed, {"test_acc": acc, "test_acc/cat": cat})

    pairs = [Pair(s, run("cnn", s, 0.5, 0.5), run("se", s, 0.5, 0.5 + d)) for s, d in enumerate([0.3, -0.4, 0.5])]
    cat = summarize(pairs, "cnn", "se", SHA).per_class_diff["cat"]
    assert (cat.low, cat.high, cat.coverage, cat.resolved()) == (-0.4, 0.5, 0.75, False)
    assert cat.median == pytest.approx(0.3)


@pytest.mark.parametrize(("diffs", "plain"), [
    ([0.01, -0.02, 0.03], "SE won 2 of 3 seeds; not enough to tell; about 114 seeds would"),
    ([-0.01, -0.02, 0.01], "CNN won 2 of 3 seeds; not enough to tell; about 44 seeds would"),
    ([0.02, 0.03, 0.025], "SE won 3 of 3 seeds, by 2.50 points on average, more than the seeds vary: SE is better"),
    ([0.01, 0.0, -0.01], "SE won 1 of 3 seeds, CNN 1, 1 tied; the seeds show no difference to tell"),
])
def test_one_plain_sentence_a_non_statistician_can_act_on(diffs, plain):
    def run(model, seed, acc):
        return ModelRun(f"{model}{seed}", model, seed, {"test_acc": acc})

    pairs = [Pair(s, run("cnn", s, 0.5), run("se", s, 0.5 + d)) for s, d in enumerate(diffs)]
    result = summarize(pairs, "cnn", "se", SHA)
    assert result.plain == plain
    text = markdown(replace(result, mlflow_run_id="r"))
    first = [line for line in text.splitlines() if line.strip()][1]
    assert plain in first and "interval" not in first and "power" not in first  # plain words first
    assert text.index(plain) < text.index("Cohen's d_z")


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


def test_without_a_config_sha_the_latest_sweep_is_pooled_without_any_local_data(store, tmp_path, monkeypatch):
    """A clone that never ran `dvc repro download` (no data/cifar10/meta.json) and a sweep with -S overrides."""
    params, experiment = store
    code_only_workspace(tmp_path, monkeypatch)
    swept = "1234567890abcdef"
    for seed in (0, 1, 2):
        for model, acc in (("cnn", 0.5), ("se", 0.52 + seed / 100)):
            log_run(experiment, model, seed, acc, sha=swept, exp_name=f"seed-{seed}-a1b2c3")
    sweep(experiment, {0: (0.5, 0.6), 1: (0.5, 0.6)})  # a later configuration, not a sweep's
    result = run_verdict(params, None, "cnn", "se", tmp_path / "verdict")
    assert result.config_sha == swept and result.seeds == 3
    assert result.experiments == ["seed-0-a1b2c3", "seed-1-a1b2c3", "seed-2-a1b2c3"]


def test_without_a_sweep_the_one_configuration_with_two_seeds_is_pooled_or_several_are_listed(store, tmp_path):
    params, experiment = store
    sweep(experiment, {0: (0.5, 0.6), 1: (0.5, 0.6)})
    log_run(experiment, "cnn", 0, 0.5, sha="fedcba9876543210")  # one seed: nothing to pool
    assert run_verdict(params, None, "cnn", "se", tmp_path).config_sha == SHA
    sweep(experiment, {0: (0.5, 0.6), 1: (0.5, 0.6), 2: (0.5, 0.6)}, sha="0123456789abcdef")
    with pytest.raises(SeecamError, match=r"2 configurations have >= 2 paired seeds; choose one with --config-sha: "
                                          r"0123456789abcdef \(3 seeds: 0, 1, 2\), abcdef0123456789 \(2 seeds: 0, 1\)"):
        run_verdict(params, None, "cnn", "se", tmp_path)


@pytest.mark.parametrize(("seeds", "coverage"), [(3, "75%"), (4, "88%"), (6, "97%")])
def test_verdict_md_states_the_coverage_of_the_seed_count_it_shows(seeds, coverage):
    """Its note once said "(3 seeds: 75%)" above a 4-seed table whose column showed 88%."""
    def run(model, seed, acc):
        return ModelRun(f"{model}{seed}", model, seed, {"test_acc": acc, "test_acc/cat": acc})

    pairs = [Pair(s, run("cnn", s, 0.5), run("se", s, 0.5 + 0.01 * (s - 1))) for s in range(seeds)]
    text = markdown(replace(summarize(pairs, "cnn", "se", SHA), mlflow_run_id="r"))
    assert f"with {seeds} seeds it is {coverage}" in text
    assert "| cat | " in text and f"| {coverage} |" in text  # the table's column says the same
