"""The metric rows both comparison tables show, which side is better, and how numbers are written.

evaluate's comparison.md and the report's page share them, so the two tables
always agree, and the report does not depend on the evaluation code (a new
FLOP counter must not rerun the report).
"""

from __future__ import annotations

import math

import numpy as np

from seecam.titles import title

HIGHER_IS_BETTER = {
    "test_acc", "test_top2_acc", "test_macro_precision", "test_macro_recall", "test_macro_f1",
    "throughput_images_per_s",
}
TIMED = {"latency_ms", "throughput_images_per_s"}  # medians over timing rounds (cost.py), with _q1 and _q3
WALL_TIME = "train_seconds"  # one measurement on a shared machine: shown, never a winner
NOT_COMPARED = "not compared (wall time)"
WITHIN_NOISE = "within timing noise"  # the rounds' interquartile ranges overlap
TABLE_ROWS = {  # metric key -> label in comparison.md and the report
    "test_acc": "accuracy (95% CI)", "test_top2_acc": "top-2 accuracy", "test_loss": "loss (cross-entropy)",
    "test_macro_precision": "macro precision", "test_macro_recall": "macro recall", "test_macro_f1": "macro F1",
    "test_ece": "expected calibration error", "parameters": "parameters", "flops_per_image": "FLOPs / image",
    "latency_ms": "latency, batch 1 (ms): median [IQR] of timing rounds",
    "throughput_images_per_s": "throughput (images/s): median [IQR] of timing rounds",
    WALL_TIME: "training wall time on this machine (s)", "peak_memory_mb": "peak memory (MB)",
}


def better(key: str, values: dict[str, dict[str, float]]) -> str:
    """Which of two models (name -> its metrics, baseline first) is better on `key`: a name, "tie",
    "within timing noise" for timings whose interquartile ranges over the rounds overlap, or "not compared" for
    wall time."""
    if key == WALL_TIME:
        return NOT_COMPARED
    (first, a), (second, b) = values.items()
    if key in TIMED and _range(key, a)[1] >= _range(key, b)[0] and _range(key, b)[1] >= _range(key, a)[0]:
        return WITHIN_NOISE
    if np.isclose(a[key], b[key], rtol=1e-9, atol=1e-12):
        return "tie"
    higher = second if b[key] > a[key] else first
    return higher if key in HIGHER_IS_BETTER else (first if higher == second else second)


def cell(key: str, values: dict[str, float]) -> str:
    """One model's `key` as the tables show it: a timing as "median [q1, q3]" with the digits its IQR supports,
    accuracy with its CI, wall time in whole seconds, counts exact."""
    if key in TIMED:
        low, high = _range(key, values)
        decimals = _decimals(high - low)
        return f"{_rounded(values[key], decimals)} [{_rounded(low, decimals)}, {_rounded(high, decimals)}]"
    if key == "test_acc" and "test_acc_ci_low" in values:
        return f"{values[key]:.4f} [{values['test_acc_ci_low']:.4f}, {values['test_acc_ci_high']:.4f}]"
    if key == WALL_TIME:
        return f"{values[key]:,.0f}"
    return format_number(values[key])


def difference(key: str, base: dict[str, float], cand: dict[str, float]) -> str:
    """cand − base on `key`, with no more digits than the wider of the two timing IQRs supports."""
    diff = cand[key] - base[key]
    if key in TIMED:
        spread = max(high - low for low, high in (_range(key, base), _range(key, cand)))
        return _rounded(diff, _decimals(spread), signed=True)
    if key == WALL_TIME:
        return f"{diff:+,.0f}"
    return format_number(diff, signed=True)


def _range(key: str, values: dict[str, float]) -> tuple[float, float]:
    """A timing's quartiles over the rounds; a metrics file from before the rounds has only the median."""
    return values.get(f"{key}_q1", values[key]), values.get(f"{key}_q3", values[key])


def _decimals(spread: float) -> int | None:
    """Decimals that keep two significant digits of `spread` (negative: tens, hundreds...); None without spread."""
    return 1 - math.floor(math.log10(spread)) if spread > 0 else None


def _rounded(value: float, decimals: int | None, signed: bool = False) -> str:
    if decimals is None:
        return format_number(value, signed)
    sign = "+" if signed else ""
    return f"{round(value, decimals):{sign},.{max(decimals, 0)}f}"


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
    """Counts exact, 4 decimals for small values, thousands separators for large ones."""
    sign = "+" if signed else ""
    if isinstance(value, int):
        return f"{value:{sign},}"
    if float(value).is_integer() and abs(value) >= 100:
        return f"{value:{sign},.0f}"
    return f"{value:{sign}.4f}" if abs(value) < 100 else f"{value:{sign},.1f}"


def points(fraction: float) -> str:
    """A difference of accuracies in percentage points, signed, 2 decimals; one that rounds to zero is "0.00"
    (never "-0.00", which a tiny negative bootstrap bound printed as)."""
    text = f"{fraction * 100:+.2f}"
    return "0.00" if float(text) == 0 else text
