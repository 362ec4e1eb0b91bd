"""The report stage: one self-contained HTML page (images embedded) that opens offline and can be mailed.

The page gives one answer. With a verdict across seeds for this page's configuration (reports/verdict/verdict.json,
written by `seecam verdict`), that verdict is the answer and leads the page, and the single run follows as
"One training run (seed N)" with no bold claim; without one, the single run is labelled "not a verdict", says how
to get one, and names a verdict that exists for another configuration. Then: metrics table, training curves,
confusion and reliability, Grad-CAM gallery, SE excitation, faithfulness, data checks, provenance, each of every
model of params.yaml, with each candidate against evaluate.baseline. Everything is read from the other stages'
outputs.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import platform
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from seecam import paths
from seecam.atomic import write_text
from seecam.code_version import git_commit, stage_code_digest
from seecam.credentials import masked
from seecam.errors import SeecamError
from seecam.history import read_history
from seecam.params import Params
from seecam.plots import DPI, close
from seecam.plots.training import training_curves
from seecam.plots.verdict import seeds_figure
from seecam.preflight import check_tracking, check_writable
from seecam.stage_metrics import EvaluateMetrics, ExplainMetrics
from seecam.tables import (
    TABLE_ROWS,
    WALL_TIME,
    WITHIN_NOISE,
    accuracy_headline,
    better,
    cell,
    difference,
    format_number,
    points,
    single_run_noise,
)
from seecam.titles import title
from seecam.tracking.stages import StageConfig, log_artifact, missing_records, stage_record
from seecam.tracking.store import RunInfo
from seecam.verdict.record import Verdict

FAITHFULNESS_ROWS = {
    "deletion_auc": ("deletion AUC", "lower"), "insertion_auc": ("insertion AUC", "higher"),
    "average_drop": ("average drop (%)", "lower"), "increase_in_confidence": ("increase in confidence (%)", "higher"),
    "randomization_spearman": ("randomisation rank correlation", "lower"),
    "randomization_undefined_pairs": ("randomisation pairs with a constant map (left out)", "-"),
    "pointing_game": ("pointing game (%)", "higher"), "pointing_game_random": ("pointing game, random point (%)", "-"),
}
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ddd; padding: 4px 10px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } th { background: #f4f4f4; }
img { max-width: 100%; } .verdict { font-size: 1.15em; background: #f3f8ff; padding: 0.8em 1em; border-radius: 6px; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
"""


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def image_tag(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def file_image(path: Path, alt: str) -> str:
    if not path.is_file():
        return f"<p><em>{html.escape(str(path))} is missing; run <code>dvc repro</code>.</em></p>"
    return image_tag(path.read_bytes(), alt)


def _numeric(value: Any) -> bool:
    return isinstance(value, Shown) or (isinstance(value, int | float) and not isinstance(value, bool))


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return html.escape(str(value))
    return f"{value:,}" if isinstance(value, int) else format_number(value)  # counts are never "0.0000"


class Shown(str):
    """A number already formatted (tables.cell): right-aligned like the numbers `table` formats itself."""


def table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if _numeric(c) else ""}">{_fmt(c)}</td>' for c in row) + "</tr>"
        for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


DATA_NAMES = {"synthetic": "synthetic data", "cifar10": "CIFAR-10"}  # meta.json's source kind -> the page title


def _code(text: str) -> str:
    """Escape, and turn Markdown `code` into <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def get_a_verdict(candidates: list[str]) -> str:
    """How to get a verdict across seeds; with several candidates, `seecam verdict` needs one named: each is."""
    verdict = "<code>seecam verdict</code>" if len(candidates) == 1 else (
        f"<code>seecam verdict --candidate {html.escape(candidates[0])}</code> (and "
        + ", ".join(f"<code>--candidate {html.escape(c)}</code>" for c in candidates[1:]) + ")")
    return (f"For a verdict across training seeds: <code>seecam sweep --seeds 0-2 --run -j 2</code>, then {verdict}, "
            "then <code>dvc repro report</code>.")


def single_run(evaluation: EvaluateMetrics, baseline: str, candidate: str) -> str:
    """One paragraph in plain weight: who of baseline and candidate was more accurate in this run, whether beyond
    test-set noise (seed noise unmeasured), the cost. Never bold or boxed: one run per model is no verdict."""
    base, cand = evaluation.models[baseline], evaluation.models[candidate]
    comparison = evaluation.comparison[candidate]
    claim, caveat = single_run_noise(comparison.acc_diff_significant)
    caveat = _code(caveat)
    faster = better("latency_ms", {baseline: base, candidate: cand})
    faster = faster if faster == WITHIN_NOISE else f"{title(faster)} faster"
    costs = [f"{cand['parameters'] - base['parameters']:+,} parameters",
             f"{cand['flops_per_image'] - base['flops_per_image']:+,} FLOPs per image",
             f"latency {cell('latency_ms', base)} → {cell('latency_ms', cand)} ms per image (median [IQR] of "
             f"timing rounds: {faster})"]
    if WALL_TIME in base and WALL_TIME in cand:
        costs.append(f"training wall time on this machine {cell(WALL_TIME, base)} → {cell(WALL_TIME, cand)} s")
    return (f"<p>{accuracy_headline(comparison.acc_diff, baseline, candidate)} in this run: test accuracy "
            f"{title(baseline)} {base['test_acc']:.2%}, {title(candidate)} {cand['test_acc']:.2%}; "
            f"{title(candidate)} − {title(baseline)} = {points(comparison.acc_diff)} points, 95% paired bootstrap "
            f"CI [{points(comparison.acc_diff_ci_low)}, {points(comparison.acc_diff_ci_high)}], "
            f"McNemar p = {comparison.mcnemar_p:.3g}: {claim}; {caveat}. "
            f"{title(candidate)} costs {', '.join(costs)}.</p>")


def seeds_verdict(verdict: Verdict) -> str:
    """The multi-seed answer: the plain sentence, then in statistical terms with its intervals, the per-seed
    figure (redrawn from verdict.json, so the page depends on that file only) and the classes the candidate
    changes reliably."""
    base, cand = verdict.baseline, verdict.candidate
    reliable = [f"{c} ({d.median * 100:+.1f})" for c, d in verdict.per_class_diff.items() if d.resolved()]
    figure = seeds_figure(verdict)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    close(figure)
    sha = html.escape(verdict.config_sha)
    return (f'<p class="verdict"><strong>{html.escape(verdict.plain)}.</strong></p>'
            f"<p>In statistical terms: {html.escape(verdict.sentence)}: over {verdict.seeds} "
            f"training seeds, mean {title(cand)} − {title(base)} = {verdict.acc_diff_mean * 100:+.2f} points, "
            f"95% t interval [{verdict.acc_diff_t_low * 100:+.2f}, {verdict.acc_diff_t_high * 100:+.2f}] "
            f"(config_sha <code>{sha}</code>; MLflow filter <code>tags.config_sha = '{sha}'</code>).</p>"
            + image_tag(buffer.getvalue(), "per-seed accuracies and the mean difference")
            + f"<p>Classes with a difference that holds across seeds: {html.escape(', '.join(reliable) or 'none')}. "
            "Details: <code>reports/verdict/verdict.md</code>.</p>")


def run_in_verdict(verdict: Verdict, seed: int) -> str:
    """How this page's run relates to the verdict above it."""
    seeds = list(verdict.per_seed)
    if str(seed) in seeds:
        return (f"<p>One of the {len(seeds)} seeds the verdict above pools; on its own it measures test-set "
                "noise only.</p>")
    return (f"<p>The verdict above pools {len(seeds)} other seeds of this configuration ({', '.join(seeds)}); on "
            "its own this run measures test-set noise only.</p>")


def verdict_mismatch(verdict: Verdict, config_sha: str | None, model_shas: dict[str, str]) -> str | None:
    """Why `verdict` is not this page's answer (HTML), or None if it is: its config_sha and the model_sha of
    each model it pooled must be those of the workspace's models (their run.json)."""
    if verdict.config_sha != config_sha:
        return f"these models are config_sha <code>{html.escape(str(config_sha))}</code>"
    for name, sha in verdict.model_shas.items():
        if model_shas.get(name) != sha:
            return (f"{html.escape(name)} here is model_sha <code>{html.escape(str(model_shas.get(name)))}</code>, "
                    f"the verdict pooled model_sha <code>{html.escape(sha)}</code>")
    return None


def other_verdict(verdict: Verdict | None, why: str | None) -> str:
    """A verdict that exists for another configuration: named, why it is not this page's (`verdict_mismatch`),
    and how to bring its configuration here."""
    if verdict is None:
        return ""
    experiments = verdict.experiments
    how = (f"<code>dvc exp apply {html.escape(experiments[0])}</code>, <code>seecam verdict</code> again (the "
           "apply restores the experiment's reports/), then <code>dvc repro report</code>" if experiments else
           "train that configuration here, <code>seecam verdict</code> again, then <code>dvc repro report</code>")
    return (f"<p>A verdict across {verdict.seeds} seeds exists for another configuration (config_sha "
            f"<code>{html.escape(verdict.config_sha)}</code>: “{html.escape(verdict.plain)}”); {why}, so it is "
            f"not this page's answer. To show it here: {how}.</p>")


def metrics_table(evaluation: EvaluateMetrics, names: list[str], baseline: str) -> str:
    """Every model's metrics, then per candidate (every other model) candidate - baseline and which of the two is
    better."""
    rows = []
    models = evaluation.models
    base = models[baseline]
    candidates = [name for name in names if name != baseline]
    for key, label in TABLE_ROWS.items():
        if all(key in models[name] for name in names):
            versus = [column for c in candidates for column in (
                Shown(difference(key, base, models[c])), better(key, {baseline: base, c: models[c]}))]
            rows.append([label, *(Shown(cell(key, models[name])) for name in names), *versus])
    return table(["metric", *names, *(h for c in candidates for h in (f"{c} − {baseline}", "better"))], rows)


def faithfulness_table(explain: ExplainMetrics, names: list[str]) -> str:
    present = {key for name in names for key in explain.models.get(name, {})}
    rows = [[label, *(explain.models.get(name, {}).get(key, "undefined") for name in names), direction]
            for key, (label, direction) in FAITHFULNESS_ROWS.items() if key in present]
    return table(["metric", *names, "better when"], rows)


def curves_image(names: list[str]) -> str:
    histories = {name: read_history(name) for name in names}
    if not all(histories.values()):
        stages = " ".join(paths.train_stage(name) for name, history in histories.items() if not history)
        return f"<p><em>training history missing; run <code>dvc repro {stages}</code>.</em></p>"
    figure = training_curves(histories)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    close(figure)
    return image_tag(buffer.getvalue(), "training curves of every model")


def data_summary(checks: dict[str, Any]) -> str:
    rows = [[split, s["count"], s["balance"], s.get("duplicates", "-"), f"{s['label_min']}..{s['label_max']}"]
            for split, s in checks.get("splits", {}).items()]
    notes = "".join(f"<li>warning: {html.escape(w)}</li>" for w in checks.get("warnings", []))
    notes += "".join(f"<li>error: {html.escape(e)}</li>" for e in checks.get("errors", []))
    status = "passed" if checks.get("ok") else "FAILED"
    return (f"<p>Data checks {status}; test images also in train: {checks.get('cross_split_duplicates', '-')}.</p>"
            + table(["split", "images", "balance (min/max class)", "exact duplicates", "labels"], rows)
            + (f"<ul>{notes}</ul>" if notes else ""))


def training_commit(info: RunInfo | None) -> str:
    """The `git_commit` tag of the training run run.json names: the code that trained the model, which may be
    older than the page's (a report rerun after a commit does not retrain)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if info is None:
        return "unknown (no run.json)"
    try:
        return mlflow.MlflowClient(info.tracking_uri).get_run(info.run_id).data.tags.get("git_commit", "unknown")
    except MlflowException:
        return f"unknown (run {info.run_id} is not in {masked(info.tracking_uri)})"


def provenance(params_text: str, device: str, names: list[str]) -> str:
    runs = {name: RunInfo.load(paths.train_dir(name) / "run.json") for name in names}
    meta = _read_json(paths.DATA_DIR / "meta.json")
    versions = {package: metadata.version(package) for package in ("torch", "mlflow", "dvc", "numpy")}
    rows = [
        ["git commit of this page (report stage)", git_commit()],
        *[[f"git commit that trained {name} (tag of its MLflow run)", training_commit(info)]
          for name, info in runs.items()],
        ["DVC experiment", os.environ.get("DVC_EXP_NAME", "(workspace)")],
        ["data source", json.dumps(meta.get("source", {}))],
        ["data sha256", meta.get("sha256", {}).get("all", "?")],
        *[[f"MLflow run ({name})", f"{info.run_id} in {masked(info.tracking_uri)}" if info else "missing"]
          for name, info in runs.items()],
        ["device", device],
        ["python", platform.python_version()],
        *[[package, version] for package, version in versions.items()],
    ]
    return table(["what", "value"], rows) + f"<h3>params.yaml</h3><pre>{html.escape(masked(params_text))}</pre>"


@dataclass(frozen=True)
class StageResults:
    """What the page shows of evaluate and explain: their metrics files, read once."""

    evaluation: EvaluateMetrics
    explain: ExplainMetrics

    @classmethod
    def load(cls, models: list[str]) -> StageResults:
        """Both files, each checked to name every model of params.yaml before the page is built."""
        results = cls(EvaluateMetrics.load(), ExplainMetrics.load())
        for metrics in (results.evaluation, results.explain):
            absent = [name for name in models if name not in metrics.models]
            if absent:
                raise SeecamError(f"{metrics.FILE} has no {absent[0]}, a model of params.yaml; run "
                                  f"`dvc repro {metrics.STAGE}` first")
        return results


def build_report(params_text: str, params: Params, results: StageResults, config_sha: str | None = None,
                 model_shas: dict[str, str] | None = None) -> str:
    """The whole page as one HTML string, of every model of params.yaml; each candidate is compared with
    evaluate.baseline.

    The verdict across seeds is the page's answer only if verdict.json is for `config_sha` and `model_shas` (the
    workspace's models', from their run.json), so a verdict about other params or another network never sits
    on top of this run's page; it is named below instead.
    """
    ev = params.evaluate
    across = Verdict.load(paths.VERDICT_DIR / "verdict.json")
    evaluation, explain = results.evaluation, results.explain
    checks = _read_json(paths.DATA_CHECKS)
    kind = _read_json(paths.DATA_DIR / "meta.json").get("source", {}).get("kind")
    models = list(params.models)
    names = " vs ".join(map(title, models))
    run = "".join(single_run(evaluation, ev.baseline, candidate) for candidate in params.candidates)
    why = verdict_mismatch(across, config_sha, model_shas or {}) if across is not None else None
    if across is not None and why is None:
        sections = [("Verdict across seeds", seeds_verdict(across)),
                    (f"One training run (seed {params.seed})", run_in_verdict(across, params.seed) + run)]
    else:
        sections = [(f"One training run (seed {params.seed}): not a verdict",
                     other_verdict(across, why) + run + f"<p>{get_a_verdict(params.candidates)}</p>")]
    sections += [
        ("Metrics", metrics_table(evaluation, models, ev.baseline)),
        ("Training curves", curves_image(models)),
        ("Confusion and calibration",
         file_image(paths.EVALUATE_DIR / "confusion.png", "confusion matrices")
         + file_image(paths.EVALUATE_DIR / "reliability.png", "reliability diagrams")
         + file_image(paths.EVALUATE_DIR / "per_class_accuracy.png", "per-class accuracy")),
        (f"Grad-CAM: {names}", file_image(paths.EXPLAIN_DIR / "gradcam_side_by_side.png", "Grad-CAM gallery")
         + file_image(paths.EXPLAIN_DIR / "cam_methods.png", "CAM methods")),
        ("SE excitation", file_image(paths.EXPLAIN_DIR / "se_excitation.png", "SE excitation by class")
         + file_image(paths.EXPLAIN_DIR / "se_mistakes.png", "the most confident mistakes of the models with gates")),
        (f"Faithfulness of Grad-CAM at {html.escape(explain.layer)} ({explain.samples} test images)",
         faithfulness_table(explain, models)),
        ("Data checks", data_summary(checks)),
        ("Provenance", provenance(params_text, evaluation.device, models)),
    ]
    body = "".join(f'<section id="{_anchor(title)}"><h2>{title}</h2>{content}</section>' for title, content in sections)
    heading = f"seecam: {names} on {DATA_NAMES.get(kind, 'CIFAR-10-format data')}"
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{heading}</title>'
            f"<style>{STYLE}</style></head><body><h1>{heading}</h1>{body}</body></html>\n")


def _anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower().split("(")[0]).strip("-")


def run_report(params: Params, params_path: Path = paths.PARAMS) -> Path:
    """Write reports/index.html and keep it as a record under every model's training run.

    The page's record is a child run like evaluate's and explain's (tracking/stages.py), keyed by the page's own
    sha256: every input of the page is in it (params, metrics, verdict, provenance), so no configuration's page
    ever replaces another's, and a rerun that writes the same page finds its record again.
    """
    names = list(params.models)
    results = StageResults.load(names)
    check_writable([paths.REPORT_HTML])
    check_tracking(names)
    runs = {name: RunInfo.load(paths.train_dir(name) / "run.json") for name in names}
    shas = {info.config_sha for info in runs.values() if info}
    page = build_report(params_path.read_text(), params, results, shas.pop() if len(shas) == 1 else None,
                        {name: info.model_sha for name, info in runs.items() if info})
    write_text(paths.REPORT_HTML, page)
    missing = missing_records(names, [StageConfig.of("evaluate", params.evaluate),
                                       StageConfig.of("explain", params.explain)])
    if missing:
        print(missing_line(missing), file=sys.stderr, flush=True)
    config = StageConfig("report", {"report.page_sha256": hashlib.sha256(page.encode()).hexdigest()},
                         stage_code_digest("report"))
    for name in names:
        if (name, "training") not in missing:
            with stage_record(name, config, {}) as run_id:
                log_artifact(run_id, paths.REPORT_HTML, "reports")
    return paths.REPORT_HTML


def missing_line(missing: list[tuple[str, str]]) -> str:
    """One line: which records of the workspace's configuration MLflow lacks, why that happens, what writes them."""
    what = ", ".join(f"{name}'s {'training run' if stage == 'training' else stage + ' record'}"
                     for name, stage in missing)
    trainings = sorted({paths.train_stage(name) for name, stage in missing if stage == "training"})
    stages = trainings + sorted({stage for _, stage in missing if stage != "training"})  # a new training run first
    again = " && ".join(f"dvc repro -f -s {stage}" for stage in stages)
    again += " && dvc repro" if any(stage == "training" for _, stage in missing) else ""
    return (f"warning: MLflow has no record of this workspace's configuration for {what} (DVC's run cache restored "
            f"these outputs without running code, into a new store or past a deleted run); `{again}` writes them")
