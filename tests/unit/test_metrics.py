import numpy as np
import pytest

from seecam import metrics


def test_confusion_matrix_counts_and_per_class_accuracy():
    labels = np.array([0, 0, 1, 1, 2, 2])
    preds = np.array([0, 1, 1, 1, 0, 2])
    confusion = metrics.confusion_matrix(labels, preds, 3)
    assert confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert confusion.sum() == len(labels)
    per_class = metrics.per_class_accuracy(confusion)
    assert per_class.tolist() == [0.5, 1.0, 0.5]
    # balanced classes: the mean of per-class accuracies is the accuracy
    assert per_class.mean() == pytest.approx((labels == preds).mean())


def test_macro_precision_recall_f1_by_hand():
    confusion = np.array([[2, 0], [1, 1]])  # class 0: P 2/3 R 1; class 1: P 1 R 1/2
    precision, recall, f1 = metrics.macro_precision_recall_f1(confusion)
    assert precision == pytest.approx((2 / 3 + 1) / 2)
    assert recall == pytest.approx((1 + 0.5) / 2)
    assert f1 == pytest.approx((0.8 + 2 / 3) / 2)


def test_top_k_and_log_loss():
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.2, 0.7, 0.1]])
    labels = np.array([1, 2, 2])
    assert metrics.top_k_accuracy(p, labels, 1) == pytest.approx(1 / 3)
    assert metrics.top_k_accuracy(p, labels, 2) == pytest.approx(2 / 3)
    assert metrics.log_loss(p, labels) == pytest.approx(-np.log([0.3, 0.6, 0.1]).mean())


def test_ece_of_a_perfectly_calibrated_predictor_is_zero_and_of_an_overconfident_one_is_not():
    rows, labels = [], []
    for confidence in (0.3, 0.5, 0.7, 0.9):  # in each group exactly `confidence` of the predictions are right
        n, right = 1000, int(confidence * 1000)
        p = np.full((n, 10), (1 - confidence) / 9)
        p[:, 0] = confidence
        rows.append(p)
        labels.append(np.r_[np.zeros(right, int), np.ones(n - right, int)])
    probabilities, labels = np.concatenate(rows), np.concatenate(labels)
    assert metrics.reliability(probabilities, labels, 15).ece == pytest.approx(0, abs=1e-9)
    overconfident = np.full_like(probabilities, 0.01 / 9)
    overconfident[:, 0] = 0.99
    assert metrics.reliability(overconfident, labels, 15).ece == pytest.approx(0.99 - (labels == 0).mean())


def test_mcnemar_exact_p_values():
    a = np.array([True] * 10 + [False] * 5)
    b = np.array([False] * 10 + [False] * 5)
    assert metrics.mcnemar_p_value(a, b) == pytest.approx(2 * 0.5**10)
    assert metrics.mcnemar_p_value(a, a) == 1.0
    balanced = np.array([True, False] * 50)
    assert metrics.mcnemar_p_value(balanced, ~balanced) == pytest.approx(1.0)
