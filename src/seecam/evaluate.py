"""The evaluate stage: every model of params.yaml on the same test images, quality and cost, side by side.

Every model but evaluate.baseline is a candidate, compared as candidate - baseline (SE - CNN by default).
Each accuracy difference gets a paired bootstrap CI (resampling the same test images for both models) and an
exact McNemar test, so each comparison says whether its difference is beyond test-set noise for
these two trained models. Both resample test images only: how much the difference moves when the
models are retrained with another seed is not measured here (that is `seecam sweep` + `seecam verdict`).
The stage also writes every model's training history as one long table, which dvc.yaml's plots draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from seecam import metrics, paths, stats
from seecam.atomic import write_csv, write_json, write_text
from seecam.code_version import check_train_stages
from seecam.cost import measure_costs
from seecam.data.store import Dataset
from seecam.errors import SeecamError
from seecam.history import long_table, read_history
from seecam.inference import load_model, predict_logits, to_device
from seecam.params import EvaluateParams
from seecam.plots import close, save_figure
from seecam.plots.evaluation import confusion_matrices, per_class_bars, reliability_diagrams
from seecam.stage_metrics import Comparison, EvaluateMetrics
from seecam.tables import (
    NOISE_MEASURED,
    NOISE_NOT_MEASURED,
    TABLE_ROWS,
    accuracy_headline,
    better,
    cell,
    difference,
    points,
    single_run_noise,
)
from seecam.titles import title
from seecam.tracking.stages import CORRECT_ARTIFACT, StageConfig, log_artifact, log_text, log_values, stage_record


@dataclass
class ModelEvaluation:
    """Everything measured for one model."""

    probabilities: np.ndarray
    correct: np.ndarray  # bool per test image
    confusion: np.ndarray
    reliability: metrics.Reliability
    values: dict[str, float]


def evaluate_model(
    probabilities: np.ndarray, labels: np.ndarray, classes: list[str], ev: EvaluateParams
) -> ModelEvaluation:
    """Quality metrics of one model's test-set probabilities."""
    predictions = probabilities.argmax(axis=1)
    confusion = metrics.confusion_matrix(labels, predictions, len(classes))
    correct = (predictions == labels).astype(float)
    low, high = stats.percentile_bootstrap(correct, ev.bootstrap_samples, ev.bootstrap_seed)
    precision, recall, f1 = metrics.macro_precision_recall_f1(confusion)
    reliability = metrics.reliability(probabilities, labels, ev.ece_bins)
    values = {
        "test_acc": float(correct.mean()), "test_acc_ci_low": low, "test_acc_ci_high": high,
        "test_loss": metrics.log_loss(probabilities, labels),
        "test_top2_acc": metrics.top_k_accuracy(probabilities, labels, 2),
        "test_macro_precision": precision, "test_macro_recall": recall, "test_macro_f1": f1,
        "test_ece": reliability.ece,
    }
    per_class = metrics.per_class_accuracy(confusion)
    values |= {f"test_acc/{c}": float(v) for c, v in zip(classes, per_class, strict=True)}
    return ModelEvaluation(probabilities, predictions == labels, confusion, reliability, values)


def compare(baseline: ModelEvaluation, candidate: ModelEvaluation, ev: EvaluateParams) -> Comparison:
    """candidate - baseline on every shared metric, plus the paired significance of the accuracy difference."""
    difference = candidate.correct.astype(float) - baseline.correct.astype(float)
    low, high = stats.percentile_bootstrap(difference, ev.bootstrap_samples, ev.bootstrap_seed)
    diffs = {key: candidate.values[key] - baseline.values[key] for key in TABLE_ROWS
             if key in baseline.values and key in candidate.values}
    return Comparison(float(difference.mean()), low, high, bool(low > 0 or high < 0),
                      metrics.mcnemar_p_value(candidate.correct, baseline.correct), NOISE_MEASURED,
                      NOISE_NOT_MEASURED, diffs)


def comparison_markdown(results: dict[str, ModelEvaluation], comparisons: dict[str, Comparison],
                        classes: list[str], baseline: str) -> str:
    """The table a person reads: metric, each model, then per candidate (`comparisons`' keys) candidate - baseline
    and which of the two is better."""
    base = results[baseline].values
    n = len(results[baseline].probabilities)
    columns = " | ".join(results)
    lines = [f"# {' vs '.join(map(title, results))} on the test set ({n} images)", ""]
    for candidate, comparison in comparisons.items():
        claim, caveat = single_run_noise(comparison.acc_diff_significant)
        lines += [
            f"**Accuracy, {title(candidate)} vs {title(baseline)}:** "
            f"{accuracy_headline(comparison.acc_diff, baseline, candidate)} "
            f"({title(candidate)} − {title(baseline)} = {points(comparison.acc_diff)}, "
            f"95% paired bootstrap CI [{points(comparison.acc_diff_ci_low)}, "
            f"{points(comparison.acc_diff_ci_high)}], McNemar p = {comparison.mcnemar_p:.3g}): "
            f"the difference is **{claim}**; {caveat}.", ""]
    deltas = "".join(f" {candidate} − {baseline} | better |" for candidate in comparisons)
    lines += [f"| metric | {columns} |{deltas}", f"|---|{'---:|' * len(results)}{'---:|---|' * len(comparisons)}"]
    for key, label in TABLE_ROWS.items():
        if not all(key in r.values for r in results.values()):
            continue
        cells = " | ".join(cell(key, r.values) for r in results.values())
        versus = "".join(f" {difference(key, base, results[c].values)} | "
                         f"{better(key, {baseline: base, c: results[c].values})} |" for c in comparisons)
        lines.append(f"| {label} | {cells} |{versus}")
    lines += ["", "## Per-class accuracy", "",
              f"| class | {columns} |{''.join(f' {c} − {baseline} |' for c in comparisons)}",
              f"|---|{'---:|' * (len(results) + len(comparisons))}"]
    for c in classes:
        key = f"test_acc/{c}"
        cells = " | ".join(f"{r.values[key]:.4f}" for r in results.values())
        diffs = "".join(f" {results[candidate].values[key] - base[key]:+.4f} |" for candidate in comparisons)
        lines.append(f"| {c} | {cells} |{diffs}")
    return "\n".join(lines) + "\n"


def training_seconds(name: str) -> float | None:
    """Wall time of the training epochs."""
    history = read_history(name)
    return sum(row.epoch_seconds for row in history) if history else None


def check_training_tables(names: list[str]) -> None:
    """Every model's training tables (evaluate gathers them for dvc.yaml's plots), before the long work."""
    for name in names:
        for source in paths.EVALUATE_TRAINING_TABLES.values():
            if not (paths.train_dir(name) / source).is_file():
                raise SeecamError(f"{paths.train_dir(name) / source} is missing; run "
                                  f"`dvc repro {paths.train_stage(name)}` first")


def run_evaluate(ev: EvaluateParams, names: list[str], dataset: Dataset, device: torch.device) -> EvaluateMetrics:
    """Evaluate models `names` (params.yaml's), write reports/evaluate/*, log each model's record (a child of its
    training run for this evaluate configuration: tracking/stages.py)."""
    check_train_stages(names)
    models = {name: load_model(paths.model_file(name), name, device)[0] for name in names}
    check_training_tables(names)
    classes = list(dataset.classes)
    labels = dataset.test.labels
    images = to_device(dataset.test.images, device)
    results = {}
    for name, model in models.items():
        probabilities = torch.softmax(predict_logits(model, images, ev.batch_size), dim=1).cpu().numpy()
        results[name] = evaluate_model(probabilities, labels, classes, ev)
    costs = measure_costs(models, device, ev.latency_repeats, ev.throughput_batch, ev.timing_rounds)
    for name in models:
        results[name].values |= costs[name]
        seconds = training_seconds(name)
        if seconds is not None:
            results[name].values["train_seconds"] = seconds
    comparisons = {name: compare(results[ev.baseline], results[name], ev) for name in names if name != ev.baseline}
    report = EvaluateMetrics({name: r.values for name, r in results.items()}, comparisons, device.type)

    out = paths.EVALUATE_DIR
    write_json(EvaluateMetrics.FILE, report.to_json())
    write_json(out / "confusion.json", {"classes": classes} | {n: r.confusion.tolist() for n, r in results.items()})
    write_text(out / "comparison.md", comparison_markdown(results, comparisons, classes, ev.baseline))
    for table, source in paths.EVALUATE_TRAINING_TABLES.items():
        columns, rows = long_table(names, source)
        write_csv(table, rows, columns)
    confusion_png, reliability_png, per_class_png = paths.EVALUATE_FIGURES
    figures = {
        confusion_png: confusion_matrices({n: r.confusion for n, r in results.items()}, classes),
        reliability_png: reliability_diagrams({n: r.reliability for n, r in results.items()}),
        per_class_png: per_class_bars({n: metrics.per_class_accuracy(r.confusion) for n, r in results.items()},
                                      classes),
    }
    for path, figure in figures.items():
        save_figure(figure, path)
    config = StageConfig.of("evaluate", ev)
    for name, result in results.items():
        with stage_record(name, config, {"device": device.type, "data_sha256": dataset.sha256}) as run_id:
            log_values(run_id, result.values)
            # one 0/1 character per test image: `seecam verdict` pools them over seeds (paired bootstrap)
            log_text(run_id, "".join("01"[int(c)] for c in result.correct), CORRECT_ARTIFACT)
            for path in figures:
                log_artifact(run_id, path, "figures/evaluate")
            log_artifact(run_id, out / "comparison.md", "reports")
    for figure in figures.values():
        close(figure)
    return report

