"""Typed, validated view of `params.yaml`.

Every stage loads params through `load_params` and passes the typed object
down, so no other module reads YAML. Any unknown key, wrong type or bad value
stops with one line naming the key and what is allowed, before work starts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from seecam.errors import SeecamError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_TRAIN_SIZE = 50_000
MODEL_NAMES = ("cnn", "se")


def _positive(obj: Any, *names: str) -> Iterator[tuple[str, str]]:
    for name in names:
        if getattr(obj, name) < 1:
            yield name, f"must be >= 1, got {getattr(obj, name)}"


@dataclass(frozen=True)
class SyntheticParams:
    """Size and seed of the offline, CIFAR-format synthetic data set."""

    train_size: int = 10000
    test_size: int = 2000
    seed: int = 0

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.train_size < 10:
            yield "train_size", f"must be >= 10 (one image per class), got {self.train_size}"
        if self.test_size < 10:
            yield "test_size", f"must be >= 10 (one image per class), got {self.test_size}"


@dataclass(frozen=True)
class DataParams:
    """Where the images come from and how train is split."""

    source: Literal["cifar10", "synthetic"] = "cifar10"
    url: str = CIFAR10_URL
    md5: str = CIFAR10_MD5
    val_size: int = 5000
    subset: int = 0
    timeout_seconds: float = 60.0
    retries: int = 3
    synthetic: SyntheticParams = field(default_factory=SyntheticParams)

    @property
    def train_size(self) -> int:
        """Train images the chosen source provides (the official count for CIFAR-10)."""
        return self.synthetic.train_size if self.source == "synthetic" else CIFAR10_TRAIN_SIZE

    def problems(self) -> Iterator[tuple[str, str]]:
        if not self.url:
            yield "url", "must be an http(s):// or file:// URL or a path, got ''"
        if len(self.md5) != 32 or any(c not in "0123456789abcdef" for c in self.md5.lower()):
            yield "md5", f"must be 32 hex digits, got {self.md5!r}"
        if self.val_size < 0:
            yield "val_size", f"must be >= 0 (0 = schedule on test loss, as the tutorial), got {self.val_size}"
        if self.subset < 0:
            yield "subset", f"must be >= 0 (0 = all train images), got {self.subset}"
        if self.val_size >= self.train_size:
            yield "val_size", f"must be smaller than the {self.train_size} train images available, got {self.val_size}"
        elif self.subset > self.train_size - self.val_size:
            yield "subset", (f"must be <= the {self.train_size - self.val_size} train images left after "
                             f"data.val_size (0 = all), got {self.subset}")
        if self.timeout_seconds <= 0:
            yield "timeout_seconds", f"must be > 0, got {self.timeout_seconds}"
        if self.retries < 0:
            yield "retries", f"must be >= 0, got {self.retries}"


@dataclass(frozen=True)
class AugmentParams:
    """The tutorial's training augmentations; 0 / false switches one off."""

    crop_padding: int = 4
    flip: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.1
    rotation_degrees: float = 15.0

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.crop_padding < 0:
            yield "crop_padding", f"must be >= 0, got {self.crop_padding}"
        for name in ("brightness", "contrast", "saturation"):
            if not 0 <= getattr(self, name) < 1:
                yield name, f"must be in [0, 1), got {getattr(self, name)}"
        if not 0 <= self.hue <= 0.5:
            yield "hue", f"must be in [0, 0.5], got {self.hue}"
        if not 0 <= self.rotation_degrees <= 180:
            yield "rotation_degrees", f"must be in [0, 180], got {self.rotation_degrees}"


@dataclass(frozen=True)
class TrainParams:
    """Optimisation settings shared by both models (tutorial defaults)."""

    epochs: int = 50
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_patience: int = 3
    lr_factor: float = 0.5
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    compile: bool = False
    augment: AugmentParams = field(default_factory=AugmentParams)

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.epochs < 1:
            yield "epochs", f"must be >= 1, got {self.epochs}"
        if self.batch_size < 1:
            yield "batch_size", f"must be >= 1, got {self.batch_size}"
        if self.lr <= 0:
            yield "lr", f"must be > 0, got {self.lr}"
        if self.weight_decay < 0:
            yield "weight_decay", f"must be >= 0, got {self.weight_decay}"
        if self.lr_patience < 0:
            yield "lr_patience", f"must be >= 0, got {self.lr_patience}"
        if not 0 < self.lr_factor < 1:
            yield "lr_factor", f"must be in (0, 1), got {self.lr_factor}"


@dataclass(frozen=True)
class CnnParams:
    """The tutorial CNN: conv3x3 blocks of these widths, then FC hidden -> 10."""

    channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    hidden: int = 512
    dropout: float = 0.5

    def problems(self) -> Iterator[tuple[str, str]]:
        if not 1 <= len(self.channels) <= 5 or min(self.channels) < 1:
            yield "channels", f"must be 1 to 5 positive widths (each block halves 32x32), got {self.channels}"
        if self.hidden < 1:
            yield "hidden", f"must be >= 1, got {self.hidden}"
        if not 0 <= self.dropout < 1:
            yield "dropout", f"must be in [0, 1), got {self.dropout}"


@dataclass(frozen=True)
class SeParams(CnnParams):
    """The same CNN with an SE block of this reduction ratio after each block's ReLU."""

    reduction: int = 16

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from super().problems()
        if self.reduction < 1:
            yield "reduction", f"must be >= 1, got {self.reduction}"
        elif self.channels and min(self.channels) < self.reduction:
            yield "reduction", f"must be <= the narrowest block ({min(self.channels)}), got {self.reduction}"


@dataclass(frozen=True)
class ModelsParams:
    """One entry per model; the names are fixed: cnn and se."""

    cnn: CnnParams = field(default_factory=CnnParams)
    se: SeParams = field(default_factory=SeParams)


@dataclass(frozen=True)
class EvaluateParams:
    """Test-set evaluation: batching, bootstrap, calibration bins, timing repeats."""

    batch_size: int = 500
    bootstrap_samples: int = 1000
    bootstrap_seed: int = 0
    ece_bins: int = 15
    latency_repeats: int = 30
    throughput_batch: int = 256
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from _positive(self, "batch_size", "bootstrap_samples", "ece_bins", "latency_repeats", "throughput_batch")


@dataclass(frozen=True)
class ExplainParams:
    """Which test images to explain and how many to score for faithfulness."""

    images: list[int] = field(default_factory=lambda: [102, 3, 7, 21, 42, 64, 77, 99])
    layer: str = "block3"
    batch_size: int = 250
    faithfulness_samples: int = 500
    deletion_steps: int = 16
    feature_map_channels: int = 9
    top_channels: int = 3
    mistakes: int = 8
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"

    def problems(self) -> Iterator[tuple[str, str]]:
        if not self.images or min(self.images) < 0:
            yield "images", f"must be a non-empty list of test indices >= 0, got {self.images}"
        yield from _positive(self, "batch_size", "faithfulness_samples", "deletion_steps", "feature_map_channels",
                             "top_channels", "mistakes")


@dataclass(frozen=True)
class TrackingParams:
    """MLflow: empty uri = sqlite:///<repo root>/mlflow.db (MLFLOW_TRACKING_URI wins)."""

    uri: str = ""
    experiment: str = "seecam"

    def problems(self) -> Iterator[tuple[str, str]]:
        if not self.experiment:
            yield "experiment", "must be a non-empty name"


@dataclass(frozen=True)
class Params:
    """Everything in params.yaml, typed."""

    seed: int = 42
    data: DataParams = field(default_factory=DataParams)
    train: TrainParams = field(default_factory=TrainParams)
    models: ModelsParams = field(default_factory=ModelsParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    explain: ExplainParams = field(default_factory=ExplainParams)
    tracking: TrackingParams = field(default_factory=TrackingParams)

    def model(self, name: str) -> CnnParams:
        """The params of model `name` (cnn or se)."""
        if name not in MODEL_NAMES:
            raise SeecamError(f"unknown model {name!r}: allowed {', '.join(MODEL_NAMES)}")
        return getattr(self.models, name)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; raise SeecamError naming the first bad key."""
    path = Path(path)
    if not path.is_file():
        raise SeecamError(f"{path}: not found; run from the repo root or pass the params file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SeecamError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_params(raw, source=str(path))


def parse_params(raw: Mapping[str, Any], source: str = "params") -> Params:
    """Build Params from a plain mapping, checking keys, types and values."""
    params = _build(Params, raw, prefix="", source=source)
    for key, problem in _problems(params, prefix=""):
        raise SeecamError(f"{source}: {key} {problem}")
    return params


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys -> values, e.g. {'train.lr': 0.001}, for MLflow params."""
    if dataclasses.is_dataclass(obj):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            out.update(flatten(getattr(obj, f.name), f"{prefix}{f.name}."))
        return out
    return {prefix.rstrip("."): obj}


def _build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    if not isinstance(raw, Mapping):
        where = prefix.rstrip(".") or "the top level"
        raise SeecamError(f"{source}: {where} must be a mapping of keys, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise SeecamError(f"{source}: unknown key '{prefix}{unknown[0]}' (allowed: {', '.join(fields)})")
    values = {name: _convert(hints[name], raw[name], f"{prefix}{name}", source) for name in raw}
    return cls(**values)


def _convert(hint: Any, value: Any, key: str, source: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{key}.", source)
    origin = typing.get_origin(hint)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise SeecamError(f"{source}: {key} must be one of {', '.join(map(str, allowed))}, got {value!r}")
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise SeecamError(f"{source}: {key} must be a list, got {value!r}")
        return [_convert(item, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported params type for {key}: {hint}")
    return _scalar(hint, value, key, source)


def _scalar(hint: type, value: Any, key: str, source: str) -> Any:
    if hint is float and isinstance(value, str):
        value = _yaml11_float(value)
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[hint]
    if not ok:
        kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[hint]
        raise SeecamError(f"{source}: {key} must be {kind}, got {value!r}")
    return hint(value)


def _yaml11_float(text: str) -> float | str:
    """PyYAML (YAML 1.1) reads `1e-3` as a string; DVC's `-S train.lr=1e-3` writes it so."""
    try:
        return float(text)
    except ValueError:
        return text


def _problems(obj: Any, prefix: str) -> Iterator[tuple[str, str]]:
    if hasattr(obj, "problems"):
        for name, problem in obj.problems():
            yield f"{prefix}{name}", problem
    for f in dataclasses.fields(obj):
        child = getattr(obj, f.name)
        if dataclasses.is_dataclass(child):
            yield from _problems(child, f"{prefix}{f.name}.")
