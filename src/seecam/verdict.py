"""`seecam verdict`: is the candidate (SE) really better than the baseline (CNN) across training seeds?

One training run per model measures test-set noise only; training-seed noise is larger. Seeds vary the training
alone (initial weights, data order, augmentation, dropout): every seed validates on the same split
(`data.split_seed`). This pools the MLflow training runs of one configuration (tag `config_sha`: every shared
training input but `seed`, with the device, precision and torch version, so runs of mixed kinds never pool),
one network per model (tag `model_sha`: where a model has several in the pool, the workspace's run.json
chooses, or it is refused), pairs baseline and candidate by `seed` tag, and treats the seed as the unit:
d_i = acc_candidate,i − acc_baseline,i. The test and explain figures come from each training run's records
(tracking/stages.py) of the workspace's evaluate and explain configurations (params and code): a run without
such an evaluate record is skipped and counted, and one without such an explain record leaves faithfulness
out; verdict.md and verdict.json name the configurations pooled.
Without `--config-sha` it pools the latest sweep's configuration (runs of `seecam sweep` experiments),
else the only configuration with >= 2 paired seeds, else it lists them: it reads MLflow alone, so it works
with any -S overrides and in a clone without data.
The decision is the 95% t interval of mean(d) over seeds (stats.py): it excludes 0 → that model is
better; otherwise "not resolved", with the seeds a paired t test would need at 80% power for the observed
d_z. One plain sentence says the same for a reader who is no statistician ("SE won 2 of 3 seeds; not enough
to tell; about 15 seeds would"). Second opinions: the bootstrap over seeds, and the per-image paired
bootstrap pooled over seeds (test-set noise of the seed-averaged models, from evaluate's
`evaluate/test_correct.txt` artifacts). Per-class differences get the median and the sign test's interval
(stats.median_interval), which stays within the seeds' own values however few they are.

Runs that are deleted, failed, killed or still running, or whose tags are malformed (well_formed), are skipped
and counted; of two finished runs of one model and seed, the latest counts. Outputs: reports/verdict/{verdict.json,
verdict.md, seeds.png} and a `verdict` MLflow run in the same experiment that lists the runs it pooled; a rerun
over the same runs and record configurations updates that run instead of adding another.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from seecam import paths, stats
from seecam.atomic import write_json, write_text
from seecam.config_loader import shown
from seecam.credentials import masked
from seecam.errors import SeecamError
from seecam.params import MODEL_NAME, Params
from seecam.sweep import is_sweep_experiment
from seecam.tables import title
from seecam.tracking.stages import (
    CORRECT_ARTIFACT,
    STAGE,
    StageConfig,
    log_artifact,
    log_values,
    run_by_id,
    stage_records,
)
from seecam.tracking.store import RunInfo, find_experiment, server_errors, tracking_uri
from seecam.tracking.training import config_params

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
    experiment: str = ""  # the DVC experiment that trained it (tag dvc_exp_name), "" outside one


@dataclass(frozen=True)
class Pair:
    seed: int
    baseline: ModelRun
    candidate: ModelRun


@dataclass(frozen=True)
class SeedResult:
    """One seed's test accuracies of both models, candidate − baseline, and the two runs (model -> run id)."""

    baseline: float
    candidate: float
    diff: float
    runs: dict[str, str]


@dataclass(frozen=True)
class Pooled:
    """The per-image paired bootstrap pooled over seeds (accuracy difference), or why it was skipped."""

    mean: float = 0.0
    low: float = 0.0
    high: float = 0.0
    images: int = 0
    skipped: str = ""  # the reason; then the numbers mean nothing


@dataclass(frozen=True)
class Verdict:
    """Every number and sentence of one verdict; accuracies as fractions, differences candidate − baseline.

    verdict.json (`to_json`) is a DVC metrics file: its keys are a contract, so they stay as they were when the
    verdict was a dict (per_seed rows keyed by the models' names). `load` reads it back.
    """

    config_sha: str
    baseline: str
    candidate: str
    seeds: int
    wins: dict[str, int]  # model -> seeds it won, and "tie"
    plain: str  # for a reader who is no statistician
    sentence: str  # in statistical terms
    acc_diff_mean: float
    acc_diff_t_low: float
    acc_diff_t_high: float
    acc_diff_bootstrap_low: float
    acc_diff_bootstrap_high: float
    cohens_dz: float | None
    power: float | None
    seeds_for_80_power: int | None
    per_seed: dict[str, SeedResult]  # str(seed) -> its result, by seed
    pooled_images: Pooled
    experiments: list[str]  # the DVC experiments that trained the runs
    per_class_diff: dict[str, stats.MedianInterval]
    faithfulness: dict[str, dict[str, stats.Interval]]  # model -> explain metric -> t interval over seeds
    skipped: dict[str, int] = field(default_factory=dict)  # why -> runs left out
    mlflow_run_id: str = ""
    model_shas: dict[str, str] = field(default_factory=dict)  # model -> the network pooled (identity.model_sha)
    evaluate_config_sha: str = ""  # the evaluate and explain records pooled (tracking.stages.StageConfig.sha)
    explain_config_sha: str = ""
    explain_layer: str = ""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["per_seed"] = {seed: {self.baseline: row.baseline, self.candidate: row.candidate, "diff": row.diff,
                                  "runs": row.runs} for seed, row in self.per_seed.items()}
        pooled = self.pooled_images
        out["pooled_images"] = ({"skipped": pooled.skipped} if pooled.skipped else
                                {"mean": pooled.mean, "low": pooled.low, "high": pooled.high, "images": pooled.images})
        out["per_class_diff"] = {c: asdict(v) | {"reliable": v.resolved()} for c, v in self.per_class_diff.items()}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        base, cand = data["baseline"], data["candidate"]
        fields = data | {
            "per_seed": {seed: SeedResult(row[base], row[cand], row["diff"], row.get("runs", {}))
                         for seed, row in data["per_seed"].items()},
            "pooled_images": Pooled(**data["pooled_images"]),
            "per_class_diff": {c: stats.MedianInterval(v["median"], v["low"], v["high"], v["coverage"])
                               for c, v in data["per_class_diff"].items()},
            "faithfulness": {model: {metric: stats.Interval(**v) for metric, v in metrics.items()}
                             for model, metrics in data["faithfulness"].items()},
            "plain": data.get("plain") or data["sentence"],  # a verdict.json from before `plain`
            "experiments": data.get("experiments", []),
        }
        return cls(**{name: fields[name] for name in cls.__dataclass_fields__ if name in fields})

    @classmethod
    def load(cls, path: Path) -> Verdict | None:
        """The verdict in `path`; None if there is none (no file, or the placeholder git keeps until a verdict)."""
        try:
            data = json.loads(path.read_text())
            return cls.from_json(data) if data.get("config_sha") else None
        except (OSError, ValueError, KeyError, TypeError):
            return None


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


def plain_sentence(interval: stats.Interval, wins: dict[str, int], needed: int | None, baseline: str,
                   candidate: str) -> str:
    """The verdict for a reader who is no statistician: who won how many seeds, and whether that is enough.

    "SE won 2 of 3 seeds; not enough to tell; about 15 seeds would" or "SE won 3 of 3 seeds, by 2.50 points
    on average, more than the seeds vary: SE is better". Same decision as `sentence`.
    """
    n = sum(wins.values())
    leader, other = (candidate, baseline) if wins[candidate] >= wins[baseline] else (baseline, candidate)
    tally = f"{title(leader)} won {wins[leader]} of {n} seeds"
    if wins["tie"]:
        tally += f", {title(other)} {wins[other]}, {wins['tie']} tied"
    if interval.excludes_zero():
        winner = candidate if interval.mean > 0 else baseline
        return (f"{tally}, by {abs(interval.mean) * 100:.2f} points on average, more than the seeds vary: "
                f"{title(winner)} is better")
    if needed is None and interval.mean == 0:
        return f"{tally}; the seeds show no difference to tell"
    if needed is None:
        return f"{tally}; not enough to tell, and the difference is too small for any practical number of seeds"
    return f"{tally}; not enough to tell; about {needed} seeds would"


def summarize(pairs: list[Pair], baseline: str, candidate: str, config_sha: str) -> Verdict:
    """Every number of the verdict from >= 2 seed pairs (accuracies as fractions)."""
    diffs = [p.candidate.metrics["test_acc"] - p.baseline.metrics["test_acc"] for p in pairs]
    t = stats.t_interval(diffs)
    boot = stats.bootstrap_mean_interval(diffs)
    dz = stats.cohens_dz(diffs)
    needed = stats.seeds_for_power(dz)
    wins = {candidate: sum(d > 0 for d in diffs), baseline: sum(d < 0 for d in diffs), "tie": diffs.count(0)}
    classes = sorted({k.split("/", 1)[1] for k in pairs[0].baseline.metrics if k.startswith("test_acc/")})
    per_class = {}
    for c in classes:
        key = f"test_acc/{c}"
        if all(key in p.baseline.metrics and key in p.candidate.metrics for p in pairs):
            per_class[c] = stats.median_interval([p.candidate.metrics[key] - p.baseline.metrics[key] for p in pairs])
    faithfulness = {
        side: {metric: stats.t_interval([getattr(p, role).metrics[f"explain/{metric}"] for p in pairs])
               for metric in FAITHFULNESS if all(f"explain/{metric}" in getattr(p, role).metrics for p in pairs)}
        for role, side in (("baseline", baseline), ("candidate", candidate))}
    return Verdict(
        config_sha=config_sha, baseline=baseline, candidate=candidate, seeds=len(pairs), wins=wins,
        plain=plain_sentence(t, wins, needed, baseline, candidate),
        sentence=sentence(t, len(pairs), needed, baseline, candidate),
        acc_diff_mean=t.mean, acc_diff_t_low=t.low, acc_diff_t_high=t.high,
        acc_diff_bootstrap_low=boot.low, acc_diff_bootstrap_high=boot.high,
        cohens_dz=dz, power=None if dz is None else stats.paired_t_power(dz, len(pairs)), seeds_for_80_power=needed,
        per_seed={str(p.seed): SeedResult(p.baseline.metrics["test_acc"], p.candidate.metrics["test_acc"], d,
                                          {baseline: p.baseline.run_id, candidate: p.candidate.run_id})
                  for p, d in zip(pairs, diffs, strict=True)},
        pooled_images=_pooled(pairs),
        experiments=sorted({run.experiment for p in pairs for run in (p.baseline, p.candidate) if run.experiment}),
        per_class_diff=per_class, faithfulness=faithfulness,
    )


def _pooled(pairs: list[Pair]) -> Pooled:
    """The per-image paired bootstrap over all seeds, or why it was skipped."""
    vectors = [(p.baseline.correct, p.candidate.correct) for p in pairs]
    if any(b is None or c is None for b, c in vectors):
        return Pooled(skipped="some runs have no evaluate/test_correct.txt (evaluated before seecam logged it)")
    if len({len(b) for b, _ in vectors} | {len(c) for _, c in vectors}) != 1:
        return Pooled(skipped="the runs were evaluated on test sets of different sizes")
    interval = stats.pooled_paired_bootstrap(np.array([c.astype(float) - b.astype(float) for b, c in vectors]))
    return Pooled(interval.mean, interval.low, interval.high, len(vectors[0][0]))


def pair_runs(runs: list[ModelRun], baseline: str, candidate: str) -> tuple[list[Pair], list[int]]:
    """Pairs sorted by seed, and the seeds that have only one of the two models."""
    by_seed: dict[int, dict[str, ModelRun]] = {}
    for run in runs:
        by_seed.setdefault(run.seed, {})[run.model] = run
    pairs = [Pair(seed, models[baseline], models[candidate]) for seed, models in sorted(by_seed.items())
             if baseline in models and candidate in models]
    return pairs, sorted(seed for seed, models in by_seed.items() if len(models) == 1)


@dataclass(frozen=True)
class Records:
    """Which records the verdict reads: those of the workspace's evaluate and explain configurations, and the
    workspace's model_sha of each model (run.json), which settles a pool where one model has several."""

    evaluate: StageConfig
    explain: StageConfig
    model_shas: dict[str, str]
    config_params: dict[str, str]  # the workspace's training configuration, as runs log it

    @classmethod
    def workspace(cls, params: Params) -> Records:
        runs = {name: RunInfo.load(paths.train_dir(name) / "run.json") for name in params.models}
        return cls(StageConfig.of("evaluate", params.evaluate), StageConfig.of("explain", params.explain),
                   {name: info.model_sha for name, info in runs.items() if info and info.model_sha},
                   config_params(params))


def trainings(runs: list[Any]) -> list[Any]:
    """The training runs among `runs`: the later stages' records copy their tags but name their stage, and the
    verdict's own runs carry config_sha too."""
    return [r for r in runs if STAGE not in r.data.tags and "verdict" not in r.data.tags]


def well_formed(tags: dict[str, str]) -> bool:
    """Whether a run's tags name a model (a valid model name), a decimal seed and a 16-hex config_sha, as training
    writes them.

    Tags are data anyone can set (the MLflow UI, a script): a run with others is skipped and counted, never trusted.
    """
    return (MODEL_NAME.fullmatch(tags.get("model", "")) is not None
            and re.fullmatch(r"\d{1,10}", tags.get("seed", "")) is not None
            and re.fullmatch(r"[0-9a-f]{16}", tags.get("config_sha", "")) is not None)


def select_runs(experiment_id: str, sha: str, baseline: str, candidate: str,
                records: Records) -> tuple[str, list[ModelRun], Counter[str], dict[str, str]]:
    """The finished baseline/candidate runs whose config_sha starts with `sha`, one model_sha per model, with
    their evaluate (and explain) records of `records`' configurations; refuse mixed configurations. Returns the
    full config_sha, the runs, the skipped counts and the model_sha pooled per model."""
    import mlflow
    from mlflow.entities import ViewType

    client = mlflow.MlflowClient()
    found = client.search_runs([experiment_id], f"tags.config_sha LIKE '{sha}%'", run_view_type=ViewType.ALL,
                               order_by=["attributes.start_time ASC"], max_results=50_000)
    found = trainings(found)
    malformed = sum(not well_formed(r.data.tags) for r in found)
    found = [r for r in found if well_formed(r.data.tags) and r.data.tags["model"] in (baseline, candidate)]
    shas = sorted({r.data.tags["config_sha"] for r in found})
    if len(shas) > 1:
        raise SeecamError(f"--config-sha {sha} matches mixed configurations ({', '.join(shas)}); "
                          "pass the full config_sha of one")
    full_sha = shas[0] if shas else sha
    skipped: Counter[str] = Counter({"malformed": malformed} if malformed else {})
    finished = []
    for r in found:
        if r.info.lifecycle_stage != "active":
            skipped["deleted"] += 1
        elif r.info.status != "FINISHED":
            skipped[r.info.status.lower()] += 1
        else:
            finished.append(r)
    model_shas = {model: _one_model_sha(model, finished, records, full_sha) for model in (baseline, candidate)}
    latest: dict[tuple[str, int], Any] = {}
    for r in finished:
        model = r.data.tags["model"]
        if r.data.tags.get("model_sha", "") != model_shas[model]:
            skipped["another model_sha"] += 1
            continue
        key = (model, int(r.data.tags["seed"]))
        skipped["superseded"] += key in latest
        latest[key] = r  # sorted by start time: the last one wins
    return full_sha, _with_records(experiment_id, latest, records, skipped, full_sha), skipped, model_shas


def _with_records(experiment_id: str, latest: dict[tuple[str, int], Any], records: Records, skipped: Counter[str],
                  config_sha: str) -> list[ModelRun]:
    """The training runs with the figures of their records of the workspace's configurations; those without an
    evaluate record are skipped and counted (all of them: refused in one line)."""
    parents = [r.info.run_id for r in latest.values()]
    evaluated = stage_records(experiment_id, parents, records.evaluate)
    explained = stage_records(experiment_id, parents, records.explain)
    if latest and not evaluated:
        raise SeecamError(f"no training run of config_sha {config_sha} has a record of this workspace's evaluate "
                          f"configuration (evaluate.* and its code: {records.evaluate.sha}); "
                          "`dvc repro -f -s evaluate` with these params where those models are (each of the sweep's "
                          "experiments: `dvc exp apply` it first) writes them (plain `dvc repro` skips an evaluate "
                          "that DVC sees as up to date)")
    runs = []
    for (model, seed), r in latest.items():
        evaluation = evaluated.get(r.info.run_id)
        if evaluation is None:
            skipped["no evaluate record of this configuration"] += 1
            continue
        explanation = explained.get(r.info.run_id)
        skipped["no explain record of this configuration (faithfulness left out)"] += explanation is None
        metrics = dict(evaluation.data.metrics) | (dict(explanation.data.metrics) if explanation else {})
        runs.append(ModelRun(r.info.run_id, model, seed, metrics, _correct(evaluation.info.run_id),
                             r.data.tags.get("dvc_exp_name", "")))
    return runs


def _one_model_sha(model: str, runs: list[Any], records: Records, config_sha: str) -> str:
    """The one model_sha of `model` to pool: its only one, or the workspace's among several; else refused."""
    shas = sorted({r.data.tags.get("model_sha", "") for r in runs if r.data.tags["model"] == model})
    if len(shas) <= 1:
        return shas[0] if shas else ""
    mine = records.model_shas.get(model)
    if mine in shas:
        return mine
    raise SeecamError(f"{model} has runs of {len(shas)} networks in config_sha {config_sha} (model_sha "
                      f"{', '.join(shas)}) and the workspace's reports/train/{model}/run.json names none of them; "
                      "`dvc exp apply` an experiment of the one to pool (or delete the other's runs) and rerun")


def sweep_hint(logged: dict[str, str], workspace: dict[str, str]) -> str:
    """RUN_SWEEP for the configuration runs `logged`: with the `-S` overrides that turn the workspace's params
    into theirs (a sweep of the workspace's own would make another configuration's seeds)."""
    overrides = [f"-S {shlex.quote(f'{k}={v}')}" for k, v in logged.items() if k in workspace and workspace[k] != v]
    if not overrides:
        return RUN_SWEEP
    return f"queue seeds of this configuration with `seecam sweep --seeds 0-2 {' '.join(overrides)} --run -j 2`"


def choose_config(experiment_id: str, baseline: str, candidate: str, uri: str) -> str:
    """The config_sha to pool when none is named: the latest sweep's, else the only one with >= 2 paired seeds.

    A sweep's runs carry its experiment names (`seed-N-<hash>`, tag dvc_exp_name), so this needs nothing
    but the tracking store: no params, no data. Several configurations and no sweep are listed to choose from.
    """
    import mlflow

    found = mlflow.MlflowClient().search_runs([experiment_id], "attributes.status = 'FINISHED'",
                                              order_by=["attributes.start_time DESC"], max_results=50_000)
    found = [r for r in trainings(found) if well_formed(r.data.tags) and r.data.tags["model"] in (baseline, candidate)]
    swept = [r for r in found if is_sweep_experiment(r.data.tags.get("dvc_exp_name", ""))]
    if swept:
        return swept[0].data.tags["config_sha"]
    seeds: dict[str, dict[str, set[int]]] = {}
    for r in found:
        seeds.setdefault(r.data.tags["config_sha"], {}).setdefault(r.data.tags["model"], set()).add(
            int(r.data.tags["seed"]))
    paired = {sha: sorted(models.get(baseline, set()) & models.get(candidate, set())) for sha, models in seeds.items()}
    enough = sorted(((sha, s) for sha, s in paired.items() if len(s) >= 2), key=lambda item: (-len(item[1]), item[0]))
    if len(enough) == 1:
        return enough[0][0]
    if not enough:
        raise SeecamError(f"no configuration in {masked(uri)} has >= 2 paired seeds of {baseline} and {candidate}; "
                          f"{RUN_SWEEP}")
    listing = ", ".join(f"{sha} ({len(s)} seeds: {', '.join(map(str, s))})" for sha, s in enough)
    raise SeecamError(f"{len(enough)} configurations have >= 2 paired seeds; choose one with --config-sha: {listing}")


def _correct(run_id: str) -> np.ndarray | None:
    """evaluate's per-image 0/1 string of the run, None if it has none.

    Listed first rather than a failed download taken as "none": a server that dies here must stop the
    verdict in one line (server_errors), not silently drop the pooled bootstrap after minutes of retries.
    """
    import mlflow

    folder = CORRECT_ARTIFACT.rsplit("/", 1)[0]
    if CORRECT_ARTIFACT not in {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, folder)}:
        return None
    text = mlflow.artifacts.load_text(f"runs:/{run_id}/{CORRECT_ARTIFACT}")
    return np.frombuffer(text.strip().encode(), dtype=np.uint8) == ord("1")


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
        f"- skipped runs: {_skipped(v.skipped)}",
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


def _skipped(skipped: dict[str, int]) -> str:
    return ", ".join(f"{n} {why}" for why, n in skipped.items() if n) or "none"


def run_verdict(params: Params, sha: str | None, baseline: str, candidate: str,
                out: Path = paths.VERDICT_DIR) -> Verdict:
    """Select, pair, summarise; write reports/verdict/* and log the verdict run."""
    for name in (baseline, candidate):
        params.model(name)  # an unknown model is one line naming params.yaml's
    if baseline == candidate:
        raise SeecamError(f"--candidate must differ from --baseline (both are {shown(baseline)})")
    if sha is not None and not re.fullmatch(r"[0-9a-f]{1,16}", sha):
        raise SeecamError(f"--config-sha must be 1-16 hex digits (a config_sha tag or its prefix), got {shown(sha)}")
    uri = tracking_uri(params.tracking)
    with server_errors(uri, "nothing it pooled was changed: rerun `seecam verdict` once it is back"):
        experiment_id = find_experiment(params.tracking)
        if experiment_id is None:
            raise SeecamError(f"no MLflow experiment {shown(params.tracking.experiment)} in {masked(uri)}; {RUN_SWEEP}")
        return _pool_and_log(experiment_id, sha, baseline, candidate, uri, out, Records.workspace(params))


def _pool_and_log(experiment_id: str, sha: str | None, baseline: str, candidate: str, uri: str,
                  out: Path, records: Records) -> Verdict:
    import mlflow
    from mlflow.entities import Param

    from seecam.plots import close, save_figure
    from seecam.plots.verdict import seeds_figure

    sha = sha or choose_config(experiment_id, baseline, candidate, uri)
    full_sha, runs, skipped, model_shas = select_runs(experiment_id, sha, baseline, candidate, records)
    pairs, unpaired = pair_runs(runs, baseline, candidate)
    if len(pairs) < 2:
        missing = f" (seeds {', '.join(map(str, unpaired))} lack one model)" if unpaired else ""
        left_out = f"; skipped: {_skipped(skipped)}" if skipped else ""
        logged = mlflow.MlflowClient().get_run(runs[0].run_id).data.params if runs else {}
        raise SeecamError(f"{len(pairs)} paired seed(s) of {baseline} and {candidate} for config_sha {full_sha} "
                          f"in {masked(uri)}{missing}{left_out}; the verdict needs >= 2: "
                          f"{sweep_hint(logged, records.config_params)}")
    verdict = replace(summarize(pairs, baseline, candidate, full_sha),
                      skipped=dict(skipped) | {"unpaired": len(unpaired)}, model_shas=model_shas,
                      evaluate_config_sha=records.evaluate.sha, explain_config_sha=records.explain.sha,
                      explain_layer=records.explain.params.get("explain.layer", ""))
    pooled = sorted(r.run_id for r in runs)
    key = hashlib.sha256(json.dumps([baseline, candidate, pooled, records.evaluate.sha,
                                     records.explain.sha]).encode()).hexdigest()[:16]
    client = mlflow.MlflowClient()
    previous = client.search_runs([experiment_id], f"tags.verdict_of = '{key}'",
                                  order_by=["attributes.start_time DESC"], max_results=1)
    reused = previous[0] if previous else None  # the same runs pooled again: update that run
    logged = reused.data.metrics if reused else {}
    name = f"verdict · {title(candidate)} vs {title(baseline)} · {len(pairs)} seeds"
    tags = {"config_sha": full_sha, "verdict": "true", "verdict_of": key, "pooled_runs": ",".join(pooled),
            "evaluate_config_sha": records.evaluate.sha, "explain_config_sha": records.explain.sha}
    with run_by_id(client, reused.info.run_id if reused else None, experiment_id, name, tags) as run_id:
        verdict = replace(verdict, mlflow_run_id=run_id)
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in (  # the same values again when reused
            {"baseline": baseline, "candidate": candidate, "seeds": len(pairs)}
            | {f"run.{p.seed}.{role}": getattr(p, role).run_id for p in pairs
               for role in ("baseline", "candidate")}).items()])
        values = {"acc_diff_mean": float(verdict.acc_diff_mean), "acc_diff_t_low": float(verdict.acc_diff_t_low),
                  "acc_diff_t_high": float(verdict.acc_diff_t_high)}
        log_values(run_id, {k: v for k, v in values.items() if logged.get(k) != v})
        write_json(out / "verdict.json", verdict.to_json())
        write_text(out / "verdict.md", markdown(verdict))
        figure = seeds_figure(verdict)
        save_figure(figure, out / "seeds.png")
        close(figure)
        for filename in ("verdict.json", "verdict.md", "seeds.png"):
            log_artifact(run_id, out / filename, "verdict")
    return verdict
