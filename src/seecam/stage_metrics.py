"""The metrics files of evaluate and explain as types: what those stages write and the report stage reads.

Each file is a DVC metrics file, so its keys are a contract (DESIGN.md): every model's metrics under the model's
name, beside the keys of the file's own (`own_keys`; params.RESERVED_NAMES keeps model names off them). A model's
metrics stay a mapping by metric key (`test_acc`, `test_acc/<class>`, `deletion_auc`, ...): the report's tables
choose their rows by key (tables.TABLE_ROWS, report.FAITHFULNESS_ROWS) and MLflow logs them under the same keys.
Their own module, so the report reads both files without depending on the code that computes them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Self

from seecam import paths
from seecam.errors import SeecamError

DIFF = "diff/"  # a comparison's key for candidate - baseline on a metric: "diff/<metric key>"


@dataclass(frozen=True)
class Comparison:
    """candidate - baseline on the same test images: the accuracy difference with its paired bootstrap CI and
    exact McNemar p, the noise these measure and the one they cannot see, and every shared metric's difference."""

    acc_diff: float
    acc_diff_ci_low: float
    acc_diff_ci_high: float
    acc_diff_significant: bool  # the CI excludes 0: beyond test-set noise for these two trained models
    mcnemar_p: float
    noise_measured: str
    noise_not_measured: str
    diffs: dict[str, float]  # metric key -> candidate - baseline

    def to_json(self) -> dict[str, Any]:
        fields = asdict(self)
        diffs = fields.pop("diffs")
        return fields | {DIFF + key: value for key, value in diffs.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Comparison:
        diffs = {key.removeprefix(DIFF): value for key, value in data.items() if key.startswith(DIFF)}
        return cls(**{key: value for key, value in data.items() if not key.startswith(DIFF)}, diffs=diffs)


class _MetricsFile:
    """Reading a stage's metrics file (each subclass says how its JSON maps to fields, in `from_json`): a missing
    or foreign file is one line naming the stage that writes it."""

    STAGE: ClassVar[str]
    FILE: ClassVar[Path]

    @classmethod
    def load(cls, path: Path | None = None) -> Self:
        """The stage's metrics in `path` (by default, FILE: where the pipeline keeps them)."""
        path = path or cls.FILE
        if not path.is_file():
            raise SeecamError(f"{path} is missing; run `dvc repro {cls.STAGE}` first")
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SeecamError(f"{path} is not what the {cls.STAGE} stage writes ({type(exc).__name__}: {exc}); "
                              f"run `dvc repro {cls.STAGE}`") from None

    @classmethod
    def own_keys(cls) -> tuple[str, ...]:
        """The file's keys beside the models' names: every field of the type but `models`."""
        return tuple(field.name for field in fields(cls) if field.name != "models")

    @classmethod
    def models_of(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The models' part of the file's JSON: every key but the file's own."""
        return {name: values for name, values in data.items() if name not in cls.own_keys()}


@dataclass(frozen=True)
class EvaluateMetrics(_MetricsFile):
    """reports/evaluate/metrics.json: every model's test-set metrics, each candidate's comparison with
    evaluate.baseline, the device they ran on."""

    STAGE: ClassVar[str] = "evaluate"
    FILE: ClassVar[Path] = paths.EVALUATE_DIR / "metrics.json"

    models: dict[str, dict[str, float]]  # name -> metric key -> value
    comparison: dict[str, Comparison]  # candidate -> candidate - baseline
    device: str

    def to_json(self) -> dict[str, Any]:
        return self.models | {"comparison": {name: c.to_json() for name, c in self.comparison.items()},
                              "device": self.device}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvaluateMetrics:
        comparison = {name: Comparison.from_json(c) for name, c in data["comparison"].items()}
        return cls(cls.models_of(data), comparison, data["device"])


@dataclass(frozen=True)
class ExplainMetrics(_MetricsFile):
    """reports/explain/metrics.json: every model's explanation metrics (the faithfulness of its Grad-CAM; for a
    model with gates, their excitation summaries), the layer explained and how many test images the faithfulness
    metrics average. A metric undefined for a model (randomization_spearman when every map is constant) is None."""

    STAGE: ClassVar[str] = "explain"
    FILE: ClassVar[Path] = paths.EXPLAIN_DIR / "metrics.json"

    models: dict[str, dict[str, float | None]]  # name -> metric key -> value
    layer: str
    samples: int

    def to_json(self) -> dict[str, Any]:
        return self.models | {"layer": self.layer, "samples": self.samples}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExplainMetrics:
        return cls(cls.models_of(data), data["layer"], data["samples"])
