"""The verdict's outputs: verdict.md (the plain sentence first, then the numbers and tables) and the files
`seecam verdict` writes, reports/verdict/{verdict.json, verdict.md, seeds.png}."""

from __future__ import annotations

from pathlib import Path

from seecam.atomic import write_json, write_text
from seecam.plots import close, save_figure
from seecam.plots.verdict import seeds_figure
from seecam.titles import title
from seecam.verdict.record import Verdict

OUTPUTS = ("verdict.json", "verdict.md", "seeds.png")  # in reports/verdict/, and as the verdict run's artifacts


def markdown(verdict: Verdict) -> str:
    """verdict.md: the sentence, the intervals, the per-seed table, per-class and faithfulness."""
    v = verdict
    base, cand = v.baseline, v.candidate
    pooled = v.pooled_images
    pts = 100
    lines = [
        f"# {title(cand)} vs {title(base)} across {v.seeds} training seeds (config {v.config_sha})",
        "", f"**{v.plain}.**", "",
        f"In statistical terms: {v.sentence}.", "",
        "Seeds vary the training alone (initial weights, data order, augmentation, dropout); every seed validates "
        "on the same split (`data.split_seed`), so their spread is training noise.", "",
        f"- mean {title(cand)} − {title(base)}: {v.acc_diff_mean * pts:+.2f} points; 95% t interval over "
        f"seeds [{v.acc_diff_t_low * pts:+.2f}, {v.acc_diff_t_high * pts:+.2f}]; bootstrap over "
        f"seeds [{v.acc_diff_bootstrap_low * pts:+.2f}, {v.acc_diff_bootstrap_high * pts:+.2f}]",
        f"- Cohen's d_z {_maybe(v.cohens_dz)}, power with these seeds {_maybe(v.power)}, seeds "
        f"for 80% power: {v.seeds_for_80_power or '-'}",
        "- per-image paired bootstrap pooled over seeds (test-set noise only): " + (
            f"[{pooled.low * pts:+.2f}, {pooled.high * pts:+.2f}] points over {pooled.images} images"
            if not pooled.skipped else f"skipped: {pooled.skipped}"),
        f"- skipped runs: {skipped_text(v.skipped)}",
        f"- records pooled: evaluate configuration {v.evaluate_config_sha or '-'}, explain configuration "
        f"{v.explain_config_sha or '-'} (explain.layer {v.explain_layer or '-'}); model_sha "
        + ", ".join(f"{model} {sha or '-'}" for model, sha in v.model_shas.items()), "",
        f"| seed | {base} | {cand} | {cand} − {base} (points) |", "|---:|---:|---:|---:|",
        *(f"| {seed} | {row.baseline:.4f} | {row.candidate:.4f} | {row.diff * pts:+.2f} |"
          for seed, row in v.per_seed.items()),
        "", f"## Per-class accuracy, {cand} − {base} (points)", "",
        "Median of the per-seed differences, with the sign test's distribution-free interval for it: "
        "order statistics of the seeds' own differences, so it never leaves their range however few seeds "
        f"there are. Its coverage is shown{_coverage(v)}; a class counts as reliable when the interval "
        "excludes 0 at 95%, which takes at least 6 seeds.", "",
        "| class | median | interval | coverage | reliable |", "|---|---:|---|---:|---|",
        *(f"| {c} | {d.median * pts:+.2f} | [{d.low * pts:+.2f}, {d.high * pts:+.2f}] | "
          f"{d.coverage:.0%} | {'yes' if d.resolved() else 'no'} |" for c, d in v.per_class_diff.items()),
    ]
    rows = [f"| {model} | {metric} | {i.mean:.4f} | [{i.low:.4f}, {i.high:.4f}] |"
            for model, metrics in v.faithfulness.items() for metric, i in metrics.items()]
    if rows:
        lines += ["", "## Grad-CAM faithfulness across seeds", "", "| model | metric | mean | 95% t interval |",
                  "|---|---|---:|---|", *rows]
    lines += ["", f"MLflow: filter runs with `tags.config_sha = '{v.config_sha}'`; "
              f"the verdict run is {v.mlflow_run_id}."]
    return "\n".join(lines) + "\n"


def _coverage(verdict: Verdict) -> str:
    """", with N seeds it is C%": every class's interval has the same coverage, that of the seed count."""
    intervals = list(verdict.per_class_diff.values())
    return f": with {verdict.seeds} seeds it is {intervals[0].coverage:.0%}" if intervals else ""


def _maybe(value: float | None) -> str:
    return "undefined (no spread between seeds)" if value is None else f"{value:.2f}"


def skipped_text(skipped: dict[str, int]) -> str:
    """"3 malformed, 1 failed": the runs left out and why, or "none"."""
    return ", ".join(f"{n} {why}" for why, n in skipped.items() if n) or "none"


def write_outputs(verdict: Verdict, out: Path) -> None:
    """OUTPUTS in `out`: the record as DVC metrics, verdict.md, and seeds.png."""
    write_json(out / "verdict.json", verdict.to_json())
    write_text(out / "verdict.md", markdown(verdict))
    figure = seeds_figure(verdict)
    save_figure(figure, out / "seeds.png")
    close(figure)
