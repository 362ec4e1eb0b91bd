"""The verdict's data: the training runs it pools, paired by seed, and the record itself (`Verdict`) that
reports/verdict/verdict.json holds.

The report stage reads verdict.json through `Verdict.load`, so this module imports `stats` (its intervals) and
nothing else of seecam: the report's code, and so its DVC deps, stay clear of MLflow queries, sweeps and figures.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seecam import stats


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
