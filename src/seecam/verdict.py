"""`seecam verdict`: is the candidate (SE) really better than the baseline (CNN) across training seeds?

One training run per model measures test-set noise only; training-seed noise is larger. This pools the
MLflow runs of one configuration (tag `config_sha`, every training param but `seed`), pairs baseline and
candidate by `seed` tag, and treats the seed as the unit: d_i = acc_candidate,i − acc_baseline,i.
The decision is the 95% t interval of mean(d) over seeds (stats.py): it excludes 0 → that model is
better; otherwise "not resolved", with the seeds a paired t test would need at 80% power for the observed
d_z. Second opinions: the bootstrap over seeds, and the per-image paired bootstrap pooled over seeds (test-set
noise of the seed-averaged models, from evaluate's `evaluate/test_correct.txt` artifacts).

Runs that are deleted, failed, killed or still running are skipped and counted; of two finished runs of one
model and seed (a `dvc repro -f`), the latest counts. Outputs: reports/verdict/{verdict.json, verdict.md,
seeds.png} and a `verdict` MLflow run in the same experiment that lists the runs it pooled.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seecam import paths, stats, tracking
from seecam.atomic import write_json, write_text
from seecam.credentials import masked
from seecam.errors import SeecamError
from seecam.params import MODELS, Params
from seecam.tables import title

FAITHFULNESS = ("deletion_auc", "insertion_auc")
RUN_SWEEP = "queue seeds with `seecam sweep --seeds 0-2 --run -j 2`"


@dataclass(frozen=True)
class ModelRun:
    """What the verdict needs from one finished training run (after evaluate, maybe explain)."""

    run_id: str
    model: str
    seed: int
    metrics: dict[str, float]
    correct: np.ndarray | None = None  # per test image, from evaluate's artifact


@dataclass(frozen=True)
class Pair:
    seed: int
    baseline: ModelRun
    candidate: ModelRun


def _interval(values: list[float]) -> dict[str, float]:
    interval = stats.t_interval(values)
    return {"mean": interval.mean, "low": interval.low, "high": interval.high}


def sentence(interval: stats.Interval, n: int, needed: int | None, baseline: str, candidate: str) -> str:
    """"SE better", "CNN better" or "not resolved with N seeds; about M seeds would resolve ..."."""
    if interval.excludes_zero():
        return f"{title(candidate if interval.mean > 0 else baseline)} better"
    if needed is None and interval.mean == 0:
        return f"not resolved with {n} seeds; the seeds show no difference to resolve"
    if needed is None:
        return (f"not resolved with {n} seeds; more than {stats.MAX_SEEDS:,} seeds would be needed to resolve a "
                "difference of this size at 80% power")
    return f"not resolved with {n} seeds; about {needed} seeds would resolve a difference of this size at 80% power"


def summarize(pairs: list[Pair], baseline: str, candidate: str) -> dict[str, Any]:
    """Every number of the verdict from >= 2 seed pairs (accuracies as fractions)."""
    diffs = [p.candidate.metrics["test_acc"] - p.baseline.metrics["test_acc"] for p in pairs]
    t = stats.t_interval(diffs)
    boot = stats.bootstrap_mean_interval(diffs)
    dz = stats.cohens_dz(diffs)
    needed = stats.seeds_for_power(dz)
    out: dict[str, Any] = {
        "baseline": baseline, "candidate": candidate, "seeds": len(pairs),
        "sentence": sentence(t, len(pairs), needed, baseline, candidate),
        "acc_diff_mean": t.mean, "acc_diff_t_low": t.low, "acc_diff_t_high": t.high,
        "acc_diff_bootstrap_low": boot.low, "acc_diff_bootstrap_high": boot.high,
        "cohens_dz": dz, "power": None if dz is None else stats.paired_t_power(dz, len(pairs)),
        "seeds_for_80_power": needed,
        "per_seed": {str(p.seed): {baseline: p.baseline.metrics["test_acc"],
                                   candidate: p.candidate.metrics["test_acc"], "diff": d,
                                   "runs": {baseline: p.baseline.run_id, candidate: p.candidate.run_id}}
                     for p, d in zip(pairs, diffs, strict=True)},
    }
    out["pooled_images"] = _pooled(pairs)
    classes = sorted({k.split("/", 1)[1] for k in pairs[0].baseline.metrics if k.startswith("test_acc/")})
    per_class = {}
    for c in classes:
        key = f"test_acc/{c}"
        if all(key in p.baseline.metrics and key in p.candidate.metrics for p in pairs):
            per_class[c] = _interval([p.candidate.metrics[key] - p.baseline.metrics[key] for p in pairs])
            per_class[c]["reliable"] = per_class[c]["low"] > 0 or per_class[c]["high"] < 0
    out["per_class_diff"] = per_class
    out["faithfulness"] = {
        side: {metric: _interval([getattr(p, role).metrics[f"explain/{metric}"] for p in pairs])
               for metric in FAITHFULNESS if all(f"explain/{metric}" in getattr(p, role).metrics for p in pairs)}
        for role, side in (("baseline", baseline), ("candidate", candidate))}
    return out


def _pooled(pairs: list[Pair]) -> dict[str, Any]:
    """The per-image paired bootstrap over all seeds, or why it was skipped."""
    vectors = [(p.baseline.correct, p.candidate.correct) for p in pairs]
    if any(b is None or c is None for b, c in vectors):
        return {"skipped": "some runs have no evaluate/test_correct.txt (evaluated before seecam logged it)"}
    if len({len(b) for b, _ in vectors} | {len(c) for _, c in vectors}) != 1:
        return {"skipped": "the runs were evaluated on test sets of different sizes"}
    interval = stats.pooled_paired_bootstrap(np.array([c.astype(float) - b.astype(float) for b, c in vectors]))
    return {"mean": interval.mean, "low": interval.low, "high": interval.high, "images": len(vectors[0][0])}


def pair_runs(runs: list[ModelRun], baseline: str, candidate: str) -> tuple[list[Pair], list[int]]:
    """Pairs sorted by seed, and the seeds that have only one of the two models."""
    by_seed: dict[int, dict[str, ModelRun]] = {}
    for run in runs:
        by_seed.setdefault(run.seed, {})[run.model] = run
    pairs = [Pair(seed, models[baseline], models[candidate]) for seed, models in sorted(by_seed.items())
             if baseline in models and candidate in models]
    return pairs, sorted(seed for seed, models in by_seed.items() if len(models) == 1)


def select_runs(experiment_id: str, sha: str, baseline: str, candidate: str) -> tuple[str, list[ModelRun],
                                                                                        Counter[str]]:
    """The finished baseline/candidate runs whose config_sha starts with `sha`; refuse mixed configurations
    and runs without test metrics. Returns the full config_sha, the runs and the skipped counts."""
    import mlflow
    from mlflow.entities import ViewType

    client = mlflow.MlflowClient()
    found = client.search_runs([experiment_id], f"tags.config_sha LIKE '{sha}%'", run_view_type=ViewType.ALL,
                               order_by=["attributes.start_time ASC"], max_results=50_000)
    found = [r for r in found if r.data.tags.get("model") in (baseline, candidate)]
    shas = sorted({r.data.tags["config_sha"] for r in found})
    if len(shas) > 1:
        raise SeecamError(f"--config-sha {sha} matches mixed configurations ({', '.join(shas)}); "
                          "pass the full config_sha of one")
    skipped: Counter[str] = Counter()
    latest: dict[tuple[str, int], Any] = {}
    for r in found:
        if r.info.lifecycle_stage != "active":
            skipped["deleted"] += 1
        elif r.info.status != "FINISHED":
            skipped[r.info.status.lower()] += 1
        else:
            key = (r.data.tags["model"], int(r.data.tags["seed"]))
            skipped["superseded"] += key in latest
            latest[key] = r  # sorted by start time: the last one wins
    lacking = [f"{model} seed {seed} (run {r.info.run_id})" for (model, seed), r in sorted(latest.items())
               if "test_acc" not in r.data.metrics]
    if lacking:
        raise SeecamError(f"runs without test metrics: {', '.join(lacking)}; run them through evaluate "
                          "(`dvc repro evaluate` in that experiment, or `dvc exp run` the sweep's experiments "
                          "to the end), or delete those runs")
    runs = [ModelRun(r.info.run_id, model, seed, dict(r.data.metrics), _correct(r.info.run_id))
            for (model, seed), r in latest.items()]
    return (shas[0] if shas else sha), runs, skipped


def _correct(run_id: str) -> np.ndarray | None:
    """evaluate's per-image 0/1 string of the run, None if it has none.

    Listed first rather than a failed download taken as "none": a server that dies here must stop the
    verdict in one line (server_errors), not silently drop the pooled bootstrap after minutes of retries.
    """
    import mlflow

    folder = tracking.CORRECT_ARTIFACT.rsplit("/", 1)[0]
    if tracking.CORRECT_ARTIFACT not in {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, folder)}:
        return None
    text = mlflow.artifacts.load_text(f"runs:/{run_id}/{tracking.CORRECT_ARTIFACT}")
    return np.frombuffer(text.strip().encode(), dtype=np.uint8) == ord("1")


def markdown(result: dict[str, Any]) -> str:
    """verdict.md: the sentence, the intervals, the per-seed table, per-class and faithfulness."""
    base, cand = result["baseline"], result["candidate"]
    pooled = result["pooled_images"]
    pts = 100
    lines = [
        f"# {title(cand)} vs {title(base)} across {result['seeds']} training seeds (config {result['config_sha']})",
        "", f"**{result['sentence']}.**", "",
        f"- mean {title(cand)} − {title(base)}: {result['acc_diff_mean'] * pts:+.2f} points; 95% t interval over "
        f"seeds [{result['acc_diff_t_low'] * pts:+.2f}, {result['acc_diff_t_high'] * pts:+.2f}]; bootstrap over "
        f"seeds [{result['acc_diff_bootstrap_low'] * pts:+.2f}, {result['acc_diff_bootstrap_high'] * pts:+.2f}]",
        f"- Cohen's d_z {_maybe(result['cohens_dz'])}, power with these seeds {_maybe(result['power'])}, seeds "
        f"for 80% power: {result['seeds_for_80_power'] or '-'}",
        "- per-image paired bootstrap pooled over seeds (test-set noise only): " + (
            f"[{pooled['low'] * pts:+.2f}, {pooled['high'] * pts:+.2f}] points over {pooled['images']} images"
            if "skipped" not in pooled else f"skipped: {pooled['skipped']}"),
        f"- skipped runs: {_skipped(result['skipped'])}", "",
        f"| seed | {base} | {cand} | {cand} − {base} (points) |", "|---:|---:|---:|---:|",
        *(f"| {seed} | {row[base]:.4f} | {row[cand]:.4f} | {row['diff'] * pts:+.2f} |"
          for seed, row in result["per_seed"].items()),
        "", f"## Per-class accuracy, {cand} − {base} (points, 95% t interval over seeds)", "",
        "| class | mean | interval | reliable |", "|---|---:|---|---|",
        *(f"| {c} | {v['mean'] * pts:+.2f} | [{v['low'] * pts:+.2f}, {v['high'] * pts:+.2f}] | "
          f"{'yes' if v['reliable'] else 'no'} |" for c, v in result["per_class_diff"].items()),
    ]
    rows = [f"| {model} | {metric} | {v['mean']:.4f} | [{v['low']:.4f}, {v['high']:.4f}] |"
            for model, metrics in result["faithfulness"].items() for metric, v in metrics.items()]
    if rows:
        lines += ["", "## Grad-CAM faithfulness across seeds", "", "| model | metric | mean | 95% t interval |",
                  "|---|---|---:|---|", *rows]
    lines += ["", f"MLflow: filter runs with `tags.config_sha = '{result['config_sha']}'`; "
              f"the verdict run is {result['mlflow_run_id']}."]
    return "\n".join(lines) + "\n"


def _maybe(value: float | None) -> str:
    return "undefined (no spread between seeds)" if value is None else f"{value:.2f}"


def _skipped(skipped: dict[str, int]) -> str:
    return ", ".join(f"{n} {why}" for why, n in skipped.items() if n) or "none"


def run_verdict(params: Params, sha: str | None, baseline: str, candidate: str,
                out: Path = paths.VERDICT_DIR) -> dict[str, Any]:
    """Select, pair, summarise; write reports/verdict/* and log the verdict run. Returns verdict.json."""
    for name in (baseline, candidate):
        if name not in MODELS:
            raise SeecamError(f"unknown model {name!r}: allowed {', '.join(MODELS)}")
    if baseline == candidate:
        raise SeecamError(f"--candidate must differ from --baseline (both are {baseline!r})")
    sha = sha or tracking.workspace_config_sha(params)
    if not re.fullmatch(r"[0-9a-f]{1,16}", sha):
        raise SeecamError(f"--config-sha must be 1-16 hex digits (a config_sha tag or its prefix), got {sha!r}")
    uri = tracking.tracking_uri(params.tracking)
    tracking.connect(uri)
    with tracking.server_errors(uri, "nothing it pooled was changed: rerun `seecam verdict` once it is back"):
        return _pool_and_log(params, sha, baseline, candidate, uri, out)


def _pool_and_log(params: Params, sha: str, baseline: str, candidate: str, uri: str, out: Path) -> dict[str, Any]:
    import mlflow

    from seecam.plots import close, save_figure
    from seecam.plots.verdict import seeds_figure

    experiment = mlflow.get_experiment_by_name(params.tracking.experiment)
    if experiment is None:
        raise SeecamError(f"no MLflow experiment {params.tracking.experiment!r} in {masked(uri)}; {RUN_SWEEP}")
    full_sha, runs, skipped = select_runs(experiment.experiment_id, sha, baseline, candidate)
    pairs, unpaired = pair_runs(runs, baseline, candidate)
    if len(pairs) < 2:
        missing = f" (seeds {', '.join(map(str, unpaired))} lack one model)" if unpaired else ""
        raise SeecamError(f"{len(pairs)} paired seed(s) of {baseline} and {candidate} for config_sha {full_sha} "
                          f"in {masked(uri)}{missing}; the verdict needs >= 2: {RUN_SWEEP}")
    result = {"config_sha": full_sha} | summarize(pairs, baseline, candidate)
    result["skipped"] = dict(skipped) | {"unpaired": len(unpaired)}
    with mlflow.start_run(experiment_id=experiment.experiment_id, run_name=f"verdict {full_sha}",
                          tags={"config_sha": full_sha, "verdict": "true",
                                "pooled_runs": ",".join(r.run_id for r in runs)}) as run:
        result["mlflow_run_id"] = run.info.run_id
        mlflow.log_params({"baseline": baseline, "candidate": candidate, "seeds": len(pairs)}
                          | {f"run.{p.seed}.{role}": getattr(p, role).run_id for p in pairs
                             for role in ("baseline", "candidate")})
        mlflow.log_metrics({k: float(result[k]) for k in ("acc_diff_mean", "acc_diff_t_low", "acc_diff_t_high")})
        write_json(out / "verdict.json", result)
        write_text(out / "verdict.md", markdown(result))
        figure = seeds_figure(result)
        save_figure(figure, out / "seeds.png")
        close(figure)
        for filename in ("verdict.json", "verdict.md", "seeds.png"):
            tracking.log_artifact(run.info.run_id, out / filename, "verdict")
    return result
