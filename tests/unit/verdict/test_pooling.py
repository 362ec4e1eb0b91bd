"""Which runs the verdict pools, on a real MLflow SQLite store filled with training-like runs (no training):
skipped and counted, refused, chosen when no configuration is named."""

from dataclasses import replace

import mlflow
import pytest

from seecam.errors import SeecamError
from seecam.params import ExplainParams
from seecam.tracking.stages import StageConfig
from seecam.tracking.store import RunInfo
from seecam.verdict.run import run_verdict
from verdict_runs import EXPLAIN, SHA, code_only_workspace, log_run, record, sweep


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
