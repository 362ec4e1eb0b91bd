"""Classification metrics on predicted probabilities: plain numpy, no framework.

Definitions (N test images, K classes, p_i the predicted distribution, y_i the label):
    accuracy        mean(argmax p_i == y_i)
    top-k accuracy  mean(y_i among the k largest p_i)
    loss            mean(-log p_i[y_i])
    ECE             sum_b |B_b|/N * |acc(B_b) - conf(B_b)|, confidence = max p_i in 15 equal-width bins
    macro P/R/F1    unweighted mean over classes of TP/(TP+FP), TP/(TP+FN), 2PR/(P+R)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows = true class, columns = predicted class."""
    return np.bincount(labels * num_classes + predictions, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall of each class (diagonal over row sums); NaN for a class absent from the labels."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(confusion) / confusion.sum(axis=1)


def macro_precision_recall_f1(confusion: np.ndarray) -> tuple[float, float, float]:
    tp = np.diag(confusion).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(tp / confusion.sum(axis=0))
        recall = np.nan_to_num(tp / confusion.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return float(precision.mean()), float(recall.mean()), float(f1.mean())


def top_k_accuracy(probabilities: np.ndarray, labels: np.ndarray, k: int) -> float:
    top = np.argpartition(-probabilities, k - 1, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)).mean())


@dataclass(frozen=True)
class Reliability:
    """Per-bin confidence, accuracy and count, and the expected calibration error."""

    bin_edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray
    ece: float


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> Reliability:
    """Equal-width confidence bins (Guo et al., 2017); empty bins have NaN confidence/accuracy."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=confidence, minlength=bins) / counts
        mean_acc = np.bincount(which, weights=correct, minlength=bins) / counts
    gaps = np.nan_to_num(np.abs(mean_acc - mean_conf))
    return Reliability(edges, mean_conf, mean_acc, counts, float((counts / len(labels) * gaps).sum()))


def mcnemar_p_value(a_correct: np.ndarray, b_correct: np.ndarray) -> float:
    """Exact two-sided McNemar test on the discordant pairs (binomial, p = 1/2)."""
    only_a = int((a_correct & ~b_correct).sum())
    only_b = int((~a_correct & b_correct).sum())
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    log_choose = math.lgamma(n + 1) - n * math.log(2)
    log_terms = [log_choose - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(k + 1)]
    top = max(log_terms)
    tail = math.exp(top) * sum(math.exp(t - top) for t in log_terms)
    return min(1.0, 2 * tail)
