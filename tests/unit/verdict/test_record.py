"""verdict.json: the record's keys are a contract (DVC metrics, the report's input) and it reads back whole."""

import json

from seecam.verdict.record import Verdict
from seecam.verdict.run import run_verdict
from verdict_runs import SHA, sweep

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
