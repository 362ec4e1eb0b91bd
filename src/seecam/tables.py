"""The metric rows both comparison tables show, which side is better, and how numbers are written.

evaluate's comparison.md and the report's page share them, so the two tables
always agree, and the report does not depend on the evaluation code (a new
FLOP counter must not rerun the report).
"""

from __future__ import annotations

import numpy as np

HIGHER_IS_BETTER = {
    "test_acc", "test_top2_acc", "test_macro_precision", "test_macro_recall", "test_macro_f1",
    "throughput_images_per_s",
}
TABLE_ROWS = {  # metric key -> label in comparison.md and the report
    "test_acc": "accuracy", "test_top2_acc": "top-2 accuracy", "test_loss": "loss (cross-entropy)",
    "test_macro_precision": "macro precision", "test_macro_recall": "macro recall", "test_macro_f1": "macro F1",
    "test_ece": "expected calibration error", "parameters": "parameters", "flops_per_image": "FLOPs / image",
    "latency_ms": "latency, batch 1 (ms)", "throughput_images_per_s": "throughput (images/s)",
    "train_seconds": "training time (s)", "peak_memory_mb": "peak memory (MB)",
}


def better(key: str, pair: dict[str, float]) -> str:
    """Which of the two models in `pair` (name -> value of `key`) is better, or "tie"."""
    (first, a), (second, b) = pair.items()
    if np.isclose(a, b, rtol=1e-9, atol=1e-12):
        return "tie"
    return (second if b > a else first) if key in HIGHER_IS_BETTER else (second if b < a else first)


def title(name: str) -> str:
    """How prose names a model: CNN, SE."""
    return name.upper()


def accuracy_headline(acc_diff: float, baseline: str, candidate: str) -> str:
    """Who is more accurate, for evaluate's table and the report's verdict alike (one wording, one tie rule).

    acc_diff = candidate - baseline as a fraction; an exact tie (same number of test images right) names
    neither model.
    """
    if acc_diff == 0:
        return "Neither model is more accurate (equal test accuracy)"
    winner = candidate if acc_diff > 0 else baseline
    return f"{title(winner)} is more accurate by {abs(acc_diff) * 100:.2f} points"


# What evaluate's paired bootstrap and McNemar test measure: they resample the test images of two *fixed*
# trained models. Retraining with another seed moves the difference far more (issue 11: SE - CNN ranged
# -1.2 to +4.0 points over 5 seeds while each run's paired CI was about +-0.7), which only a sweep measures.
NOISE_MEASURED = "test-set sampling (one training run per model)"
NOISE_NOT_MEASURED = "training-seed variation (see `seecam sweep`)"


def single_run_noise(significant: bool) -> tuple[str, str]:
    """The single-run significance claim, naming the noise it is about, and the caveat naming what it cannot see.

    comparison.md and the report both print "<claim>; <caveat>" (the caveat's command is in Markdown backticks).
    """
    side = "beyond" if significant else "within"
    return (f"{side} test-set noise for these two trained models",
            "training-seed variation not measured (see `seecam sweep`)")


def format_number(value: float, signed: bool = False) -> str:
    """4 decimals for small values, thousands separators for large ones."""
    sign = "+" if signed else ""
    if float(value).is_integer() and abs(value) >= 100:
        return f"{value:{sign},.0f}"
    return f"{value:{sign}.4f}" if abs(value) < 100 else f"{value:{sign},.1f}"


def points(fraction: float) -> str:
    """A difference of accuracies in percentage points, signed, 2 decimals; one that rounds to zero is "0.00"
    (never "-0.00", which a tiny negative bootstrap bound printed as)."""
    text = f"{fraction * 100:+.2f}"
    return "0.00" if float(text) == 0 else text
