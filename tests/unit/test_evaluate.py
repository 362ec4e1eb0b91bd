import json
import re

import numpy as np
import pytest

from seecam.errors import SeecamError
from seecam.evaluate import (
    ModelEvaluation,
    check_training_tables,
    compare,
    comparison_markdown,
    evaluate_model,
)
from seecam.params import EvaluateParams
from seecam.paths import EVALUATE_TRAINING_TABLES
from seecam.report import single_run
from seecam.stage_metrics import Comparison, EvaluateMetrics

CLASSES = [f"c{i}" for i in range(10)]
COST = {"parameters": 10, "flops_per_image": 20, "latency_ms": 1.0}


def toy(accuracy: float, seed: int, n: int = 2000):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    predictions = np.where(rng.random(n) < accuracy, labels, (labels + 1) % 10)
    probabilities = np.full((n, 10), 0.02)
    probabilities[np.arange(n), predictions] = 0.82
    return probabilities, labels


def metrics_file(cnn: ModelEvaluation, se: ModelEvaluation, comparison: Comparison) -> EvaluateMetrics:
    """What evaluate writes for these two models (with made-up costs), as the report reads it."""
    return EvaluateMetrics({"cnn": cnn.values | COST, "se": se.values | COST}, {"se": comparison}, "cpu")


def test_evaluation_and_paired_comparison():
    ev = EvaluateParams(bootstrap_samples=500)
    cnn = evaluate_model(*toy(0.70, 0), CLASSES, ev)
    se = evaluate_model(*toy(0.80, 1), CLASSES, ev)
    assert cnn.confusion.sum() == 2000
    assert cnn.values["test_acc_ci_low"] < cnn.values["test_acc"] < cnn.values["test_acc_ci_high"]
    per_class = [cnn.values[f"test_acc/{c}"] for c in CLASSES]
    assert np.mean(per_class) == pytest.approx(cnn.values["test_acc"])
    comparison = compare(cnn, se, ev)
    assert comparison.acc_diff == pytest.approx(se.values["test_acc"] - cnn.values["test_acc"])
    assert comparison.acc_diff_ci_low < comparison.acc_diff < comparison.acc_diff_ci_high
    assert comparison.acc_diff_significant and comparison.mcnemar_p < 1e-6
    text = comparison_markdown({"cnn": cnn, "se": se}, {"se": comparison}, CLASSES, "cnn")
    assert "the difference is **beyond test-set noise for these two trained models**" in text
    assert "training-seed variation not measured (see `seecam sweep`)" in text
    assert "| accuracy (95% CI) |" in text and "| se |" in text and "| c9 |" in text
    assert text.startswith("# CNN vs SE on the test set (2000 images)")
    assert "| metric | cnn | se | se − cnn | better |\n|---|---:|---:|---:|---|" in text


def test_every_model_but_the_baseline_is_a_candidate_with_its_own_columns():
    """Issue 25: a third model had no difference and no "better" of its own; each candidate gets both."""
    ev = EvaluateParams(bootstrap_samples=200)
    results = {name: evaluate_model(*toy(accuracy, seed), CLASSES, ev)
               for name, accuracy, seed in (("cnn", 0.7, 0), ("se", 0.8, 1), ("se8", 0.6, 2))}
    comparisons = {name: compare(results["cnn"], results[name], ev) for name in ("se", "se8")}
    assert comparisons["se8"].acc_diff == pytest.approx(
        results["se8"].values["test_acc"] - results["cnn"].values["test_acc"])
    text = comparison_markdown(results, comparisons, CLASSES, "cnn")
    assert text.startswith("# CNN vs SE vs SE8 on the test set (2000 images)")
    assert "**Accuracy, SE vs CNN:** SE is more accurate by" in text
    assert "**Accuracy, SE8 vs CNN:** CNN is more accurate by" in text
    assert ("| metric | cnn | se | se8 | se − cnn | better | se8 − cnn | better |\n"
            "|---|---:|---:|---:|---:|---|---:|---|") in text
    accuracy = next(line for line in text.splitlines() if line.startswith("| accuracy (95% CI) |"))
    assert re.search(r"\| \+0\.\d{4} \| se \| -0\.\d{4} \| cnn \|$", accuracy), accuracy
    assert "| class | cnn | se | se8 | se − cnn | se8 − cnn |" in text


def test_same_predictions_are_within_test_set_noise():
    ev = EvaluateParams(bootstrap_samples=300)
    a = evaluate_model(*toy(0.7, 0), CLASSES, ev)
    comparison = compare(a, a, ev)
    assert comparison.acc_diff == 0 and not comparison.acc_diff_significant


@pytest.mark.parametrize(("cnn_accuracy", "se_accuracy", "side"), [(0.7, 0.8, "beyond"), (0.7, 0.7, "within")])
def test_no_output_claims_noise_without_naming_which(cnn_accuracy, se_accuracy, side):
    """One run per model measures test-set sampling only: every output says so, for both outcomes."""
    ev = EvaluateParams(bootstrap_samples=300)
    cnn = evaluate_model(*toy(cnn_accuracy, 0), CLASSES, ev)
    se = evaluate_model(*toy(se_accuracy, 0 if side == "within" else 1), CLASSES, ev)
    comparison = compare(cnn, se, ev)
    assert comparison.acc_diff_significant == (side == "beyond")
    assert comparison.noise_measured == "test-set sampling (one training run per model)"
    assert comparison.noise_not_measured == "training-seed variation (see `seecam sweep`)"
    outputs = {
        "comparison.md": comparison_markdown({"cnn": cnn, "se": se}, {"se": comparison}, CLASSES, "cnn"),
        "metrics.json": json.dumps(comparison.to_json()),
        "report": single_run(metrics_file(cnn, se, comparison), "cnn", "se"),
    }
    for name, text in outputs.items():
        assert not re.search(r"(beyond|within) noise", text), name
        assert "test-set" in text and "seecam sweep" in text, name
    for name in ("comparison.md", "report"):
        assert f"{side} test-set noise for these two trained models" in outputs[name]
        assert "training-seed variation not measured" in outputs[name]


def test_an_exact_tie_reads_the_same_in_evaluate_and_in_the_report():
    # Same accuracy, different images right: the difference is exactly 0 and nobody is ahead.
    ev = EvaluateParams(bootstrap_samples=200)
    labels = np.arange(1000) % 10
    right = np.arange(1000) < 700
    cnn_probabilities, se_probabilities = np.full((2, 1000, 10), 0.02)
    cnn_probabilities[np.arange(1000), np.where(right, labels, (labels + 1) % 10)] = 0.82
    se_probabilities[np.arange(1000), np.where(right[::-1], labels, (labels + 1) % 10)] = 0.82
    cnn = evaluate_model(cnn_probabilities, labels, CLASSES, ev)
    se = evaluate_model(se_probabilities, labels, CLASSES, ev)
    comparison = compare(cnn, se, ev)
    assert comparison.acc_diff == 0
    markdown = comparison_markdown({"cnn": cnn, "se": se}, {"se": comparison}, CLASSES, "cnn")
    page = single_run(metrics_file(cnn, se, comparison), "cnn", "se")
    assert "Neither model is more accurate" in markdown and "Neither model is more accurate" in page
    assert "ahead" not in markdown and "CNN is" not in markdown and "CNN is" not in page


def test_comparison_md_gives_timings_with_their_range_and_no_winner_inside_it():
    ev = EvaluateParams(bootstrap_samples=200)
    cnn = evaluate_model(*toy(0.70, 0), CLASSES, ev)
    se = evaluate_model(*toy(0.80, 1), CLASSES, ev)
    cnn.values |= COST | {"latency_ms_q1": 0.9, "latency_ms_q3": 1.3, "train_seconds": 100.2}
    se.values |= COST | {"latency_ms": 1.1, "latency_ms_q1": 1.0, "latency_ms_q3": 1.2, "train_seconds": 90.0}
    text = comparison_markdown({"cnn": cnn, "se": se}, {"se": compare(cnn, se, ev)}, CLASSES, "cnn")
    assert "| latency, batch 1 (ms): median [IQR] of timing rounds | 1.00 [0.90, 1.30] | 1.10 [1.00, 1.20] " \
           "| +0.10 | within timing noise |" in text
    assert "| training wall time on this machine (s) | 100 | 90 | -10 | not compared (wall time) |" in text
    assert "| parameters | 10 | 10 | +0 | tie |" in text  # counts exact


def test_a_model_without_its_training_tables_is_one_line_before_the_long_work(tmp_path, monkeypatch):
    """evaluate gathers every model's history.csv and iterations.csv for dvc.yaml's plots: a missing one was a
    FileNotFoundError traceback after every metric, figure and record had been written."""
    monkeypatch.chdir(tmp_path)
    for name in ("cnn", "se"):
        (tmp_path / f"reports/train/{name}").mkdir(parents=True)
        for source in EVALUATE_TRAINING_TABLES.values():
            (tmp_path / f"reports/train/{name}/{source}").write_text("epoch\n1\n")
    check_training_tables(["cnn", "se"])
    (tmp_path / "reports/train/se/iterations.csv").unlink()
    with pytest.raises(SeecamError, match=r"^reports/train/se/iterations.csv is missing; run `dvc repro train_se` "
                                          r"first$"):
        check_training_tables(["cnn", "se"])
