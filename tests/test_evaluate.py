import numpy as np
import pytest

from seecam.evaluate import better, compare, comparison_markdown, evaluate_model
from seecam.params import EvaluateParams

CLASSES = [f"c{i}" for i in range(10)]


def toy(accuracy: float, seed: int, n: int = 2000):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    predictions = np.where(rng.random(n) < accuracy, labels, (labels + 1) % 10)
    probabilities = np.full((n, 10), 0.02)
    probabilities[np.arange(n), predictions] = 0.82
    return probabilities, labels


def test_evaluation_and_paired_comparison():
    ev = EvaluateParams(bootstrap_samples=500)
    cnn = evaluate_model(*toy(0.70, 0), CLASSES, ev)
    se = evaluate_model(*toy(0.80, 1), CLASSES, ev)
    assert cnn.confusion.sum() == 2000
    assert cnn.values["test_acc_ci_low"] < cnn.values["test_acc"] < cnn.values["test_acc_ci_high"]
    per_class = [cnn.values[f"test_acc/{c}"] for c in CLASSES]
    assert np.mean(per_class) == pytest.approx(cnn.values["test_acc"])
    comparison = compare(cnn, se, ev)
    assert comparison["acc_diff"] == pytest.approx(se.values["test_acc"] - cnn.values["test_acc"])
    assert comparison["acc_diff_ci_low"] < comparison["acc_diff"] < comparison["acc_diff_ci_high"]
    assert comparison["acc_diff_significant"] and comparison["mcnemar_p"] < 1e-6
    text = comparison_markdown({"cnn": cnn, "se": se}, comparison, CLASSES)
    assert "the difference is **beyond noise**" in text
    assert "| accuracy (95% CI) |" in text and "| se |" in text and "| c9 |" in text


def test_same_predictions_are_within_noise():
    ev = EvaluateParams(bootstrap_samples=300)
    a = evaluate_model(*toy(0.7, 0), CLASSES, ev)
    comparison = compare(a, a, ev)
    assert comparison["acc_diff"] == 0 and not comparison["acc_diff_significant"]


def test_better_knows_the_direction_of_each_metric():
    assert better("test_acc", 0.7, 0.8) == "se"
    assert better("test_loss", 0.7, 0.8) == "cnn"
    assert better("latency_ms", 2.0, 1.0) == "se"
    assert better("parameters", 10, 10) == "tie"
