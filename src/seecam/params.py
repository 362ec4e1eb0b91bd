"""Typed, validated view of `params.yaml`: the schema (dataclasses, bounds and their reasons).

Every stage loads params through `load_params` and passes the typed object
down, so no other module reads params.yaml. Any unknown key, wrong type or bad
value stops with one line naming the key and what is allowed, before work
starts (the generic YAML -> dataclass checks live in config_loader.py).
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from seecam.config_loader import TAGGED, load_config, parse_config, shown
from seecam.credentials import masked
from seecam.errors import SeecamError
from seecam.paths import train_stage

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_TRAIN_SIZE = 50_000
CIFAR10_TEST_SIZE = 10_000
# A CIFAR-10 image is IMAGE_SIDE x IMAGE_SIDE RGB pixels of one of NUM_CLASSES classes: the data (archive, synthetic,
# checks), the networks, their cost and the bounds below all read the size here.
IMAGE_SIDE = 32
NUM_CLASSES = 10

# Upper bounds, each with the reason a user reads when they hit it.
SEED_MAX = 2**32 - 1
SEED_WHY = "numpy seeds are 0..2**32-1"
MAX_SYNTHETIC_IMAGES = 100_000  # ~2,400 images/s to generate on 2 CPU cores
MAX_BATCH = CIFAR10_TEST_SIZE
BATCH_WHY = "the whole CIFAR-10 test set in one batch; more only costs memory"
MAX_WIDTH = 4096
MAX_HIDDEN = 16_384
MAX_WEIGHTS = 100_000_000
MAX_EPOCHS = 10_000
MAX_PROCESSES = 64
MAX_PANELS = 64
PANELS_WHY = "one figure panel each; more is unreadable and slow to draw"
MAX_TIMEOUT_SECONDS = 3600.0
MAX_DEADLINE_SECONDS = 86_400.0
MAX_BYTES_PER_SECOND = 1_000_000_000
MAX_RETRIES = 10
MLFLOW_MAX_EXPERIMENT_NAME = 500
BLOCK_PARTS = ("conv", "bn", "relu", "pool")
# A model's name is data (`models.<name>`): it names files (models/<name>.pt), a DVC stage (train_<name>), MLflow
# tags and table columns, so it is short, lowercase (no two files on a case-insensitive disk) and plain.
MODEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
# evaluate's and explain's metrics.json hold one entry per model beside these keys: a model of that name would
# overwrite one (tests/e2e/pipeline/test_dvc_evaluate.py and test_dvc_explain.py check the list against both files)
RESERVED_NAMES = ("comparison", "device", "layer", "samples")
MAX_MODELS = 10
MAX_MODELS_WHY = "a colour each in the figures' palette, matplotlib's tab10; each is a training per seed"
# MLflow's tracking-store schemes (mlflow/tracking/_tracking_service/utils.py); a database URI may name its driver.
TRACKING_SCHEMES = ("http(s)://, sqlite:///, postgresql[+driver]://, mysql[+driver]://, mssql[+driver]://, "
                    "file://, databricks")
_TRACKING_URI = re.compile(r"https?://[^/]|sqlite:///.|(postgresql|mysql|mssql)(\+\w+)?://.|file://.|databricks(://.|$)")


def _in_range(obj: Any, name: str, low: int | float, high: int | float, why: str,
              low_why: str = "") -> Iterator[tuple[str, str]]:
    """`low <= value <= high`; the upper bound's message says why it exists, so a user knows what to change."""
    value = getattr(obj, name)
    if value < low:
        yield name, f"must be >= {low}{low_why}, got {shown(value)}"
    elif value > high:
        yield name, f"must be <= {high:,} ({why}), got {shown(value)}"


def _seed(obj: Any, name: str) -> Iterator[tuple[str, str]]:
    yield from _in_range(obj, name, 0, SEED_MAX, SEED_WHY)


def _one_line(text: str) -> bool:
    """No newline or control character: names and URIs end up in one-line messages, logs and MLflow's UI."""
    return text.isprintable()


def _archive_url_ok(url: str) -> bool:
    """What data.fetch.fetch_archive serves: http(s) with a host, file://, or a plain path (scheme of <= 1 letter)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # e.g. an unclosed [IPv6] host
        return False
    remote = parts.scheme in ("http", "https") and bool(parts.hostname)
    return bool(url) and _one_line(url) and (remote or parts.scheme == "file" or len(parts.scheme) <= 1)


def tracking_uri_problem(uri: str) -> str | None:
    """Why MLflow cannot use `uri` as a tracking store, or None; "" means the project's SQLite store.

    A space is fine in a file path (`sqlite:////home/me/my project/mlflow.db`, the default store of a clone
    in such a folder), never in a server's or a database's URL.
    """
    local = uri.startswith(("sqlite:///", "file://"))
    if uri == "" or (_one_line(uri) and (local or " " not in uri) and _TRACKING_URI.match(uri)):
        return None
    return (f"must be '' (the project's store) or a URI MLflow can track to: {TRACKING_SCHEMES}; "
            f"got {shown(masked(uri))}")


def check_tracking_uri(uri: str, key: str) -> None:
    """Refuse, with one line naming `key`, a tracking URI MLflow would only fail on mid-run."""
    problem = tracking_uri_problem(uri)
    if problem:
        raise SeecamError(f"{key} {problem}")


def explainable_layers(blocks: int) -> list[str]:
    """Feature-map (4-D) layers that every model has when the smallest one has `blocks` blocks.

    Grad-CAM needs a B x C x h x w activation; a block's gate (`blockN.se`, `blockN.eca`) exists only in the
    models of its kind, and `head.*` is 2-D.
    """
    return [name for i in range(1, blocks + 1) for name in (f"block{i}", *(f"block{i}.{p}" for p in BLOCK_PARTS))]


@dataclass(frozen=True)
class SyntheticParams:
    """Size and seed of the offline, CIFAR-format synthetic data set."""

    train_size: int = 10000
    test_size: int = 2000
    seed: int = 0

    def problems(self) -> Iterator[tuple[str, str]]:
        for name in ("train_size", "test_size"):
            yield from _in_range(self, name, 10, MAX_SYNTHETIC_IMAGES,
                                 "twice CIFAR-10's 50,000 train images; ~40 s to generate, 300 MB in memory",
                                 low_why=" (one image per class)")
        yield from _seed(self, "seed")


@dataclass(frozen=True)
class DataParams:
    """Where the images come from and how train is split."""

    source: Literal["cifar10", "synthetic"] = "cifar10"
    url: str = CIFAR10_URL
    md5: str = CIFAR10_MD5
    val_size: int = 5000
    subset: int = 0
    split_seed: int = 0  # draws the validation split; not `seed`, so seeds vary the training alone
    timeout_seconds: float = 60.0  # each wait for the server
    deadline_seconds: float = 3600.0  # the whole download, retries included
    min_bytes_per_second: float = 1024.0  # less than this on average over stall_seconds: stalled, fail now
    stall_seconds: float = 60.0
    retries: int = 3
    synthetic: SyntheticParams = field(default_factory=SyntheticParams)

    @property
    def train_size(self) -> int:
        """Train images the chosen source provides (the official count for CIFAR-10)."""
        return self.synthetic.train_size if self.source == "synthetic" else CIFAR10_TRAIN_SIZE

    def problems(self) -> Iterator[tuple[str, str]]:
        if not _archive_url_ok(self.url):
            yield "url", f"must be an http(s)://host/... or file:// URL or a path, got {shown(self.url)}"
        if len(self.md5) != 32 or any(c not in "0123456789abcdef" for c in self.md5.lower()):
            yield "md5", f"must be 32 hex digits, got {shown(self.md5)}"
        if self.val_size < 0:
            yield "val_size", f"must be >= 0 (0 = schedule on test loss, as the tutorial), got {shown(self.val_size)}"
        if self.subset < 0:
            yield "subset", f"must be >= 0 (0 = all train images), got {shown(self.subset)}"
        yield from _seed(self, "split_seed")
        if self.val_size >= self.train_size:
            yield "val_size", (f"must be smaller than the {self.train_size} train images available, "
                               f"got {shown(self.val_size)}")
        elif self.subset > self.train_size - self.val_size:
            yield "subset", (f"must be <= the {self.train_size - self.val_size} train images left after "
                             f"data.val_size (0 = all), got {shown(self.subset)}")
        if self.timeout_seconds <= 0:
            yield "timeout_seconds", f"must be > 0, got {shown(self.timeout_seconds)}"
        elif self.timeout_seconds > MAX_TIMEOUT_SECONDS:
            yield "timeout_seconds", (f"must be <= {MAX_TIMEOUT_SECONDS:,} (a server silent for an hour is down; "
                                      f"retries cover slow links), got {shown(self.timeout_seconds)}")
        if self.deadline_seconds <= 0:
            yield "deadline_seconds", f"must be > 0, got {shown(self.deadline_seconds)}"
        elif self.deadline_seconds > MAX_DEADLINE_SECONDS:
            yield "deadline_seconds", (f"must be <= {MAX_DEADLINE_SECONDS:,} (a day: on a slower link download the "
                                       "archive yourself and set data.url to the file), "
                                       f"got {shown(self.deadline_seconds)}")
        yield from _in_range(self, "min_bytes_per_second", 0, MAX_BYTES_PER_SECOND,
                             "1 GB/s: more would call every link stalled", " (0 = no minimum)")
        if self.stall_seconds <= 0:
            yield "stall_seconds", f"must be > 0, got {shown(self.stall_seconds)}"
        elif self.stall_seconds > self.deadline_seconds:
            yield "stall_seconds", (f"must be <= data.deadline_seconds ({self.deadline_seconds:,.0f} s: a longer "
                                    f"window never ends before the deadline), got {shown(self.stall_seconds)}")
        yield from _in_range(self, "retries", 0, MAX_RETRIES,
                             "the wait doubles per retry: 10 retries already wait ~17 minutes")


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
        yield from _in_range(self, "crop_padding", 0, IMAGE_SIDE,
                             f"the {IMAGE_SIDE}x{IMAGE_SIDE} image's side; a larger offset crops only padding")
        for name in ("brightness", "contrast", "saturation"):
            if not 0 <= getattr(self, name) < 1:
                yield name, f"must be in [0, 1), got {shown(getattr(self, name))}"
        if not 0 <= self.hue <= 0.5:
            yield "hue", f"must be in [0, 0.5], got {shown(self.hue)}"
        if not 0 <= self.rotation_degrees <= 180:
            yield "rotation_degrees", f"must be in [0, 180], got {shown(self.rotation_degrees)}"


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
    # auto = compile when the run is long enough to pay for it (compiling.decide); true / false force it
    compile: Literal["auto", True, False] = "auto"
    # normalize.NORMALIZATIONS: cifar10 = the train set's per-pixel std; tutorial = the tutorial's constants
    normalize: Literal["cifar10", "tutorial"] = "cifar10"
    # auto = bf16 autocast on CUDA (resolved_precision), fp32 elsewhere; fp32 = as the tutorial everywhere
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    augment: AugmentParams = field(default_factory=AugmentParams)
    # DDP under torchrun (distributed.py): 1 = one process, no process group
    processes: int = 1
    scale_batch: bool = False  # false: batch_size is the global batch; true: each process takes batch_size
    sync_batchnorm: bool = False  # SyncBatchNorm across processes (CUDA only)

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from _in_range(self, "epochs", 1, MAX_EPOCHS, "the tutorial trains 50; 10,000 is weeks on a CPU")
        yield from _in_range(self, "batch_size", 1, MAX_BATCH, BATCH_WHY)
        yield from _in_range(self, "processes", 1, MAX_PROCESSES, "one per GPU on an 8-GPU node times 8 nodes; "
                             "beyond, run torchrun yourself")
        if not self.scale_batch and 1 <= self.processes <= MAX_PROCESSES and self.batch_size % self.processes:
            yield "processes", (f"{self.processes} must divide train.batch_size {self.batch_size} (the global "
                                "batch is split over the processes), or set train.scale_batch: true")
        if self.lr <= 0:
            yield "lr", f"must be > 0, got {shown(self.lr)}"
        if self.weight_decay < 0:
            yield "weight_decay", f"must be >= 0, got {shown(self.weight_decay)}"
        yield from _in_range(self, "lr_patience", 0, MAX_EPOCHS, "train.epochs can be at most 10,000")
        if not 0 < self.lr_factor < 1:
            yield "lr_factor", f"must be in (0, 1), got {shown(self.lr_factor)}"
        if not isinstance(self.compile, bool) and self.compile != "auto":  # 1 == True passes the Literal check
            yield "compile", f"must be auto, true or false, got {shown(self.compile)}"


def resolved_precision(precision: str, device_type: str) -> Literal["bf16", "fp32"]:
    """What `train.precision` means on a device: `auto` is bf16 autocast on CUDA only (it halves the bytes a CUDA
    step moves), fp32 elsewhere. The training step and the run's identity (identity.py) both read it here."""
    return "bf16" if precision == "bf16" or (precision == "auto" and device_type == "cuda") else "fp32"


@dataclass(frozen=True)
class CnnParams:
    """The tutorial CNN: conv3x3 blocks of these widths, then FC hidden -> 10.

    `gate` is what a kind declares about its channel attention: the name of the gating module each block
    holds (`blockN.<gate>`, whose `gate` submodule outputs the B x C channel weights explain analyses), None for
    none. A ClassVar, not a field: it is the kind's, and model_sha (identity.py) hashes the fields.
    """

    gate: ClassVar[str | None] = None
    channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    hidden: int = 512
    dropout: float = 0.5

    def weights(self) -> int:
        """Trainable parameters of the network these params build (models.py), to bound its memory."""
        widths = [3, *self.channels]
        convs = sum(9 * c_in * c_out + 3 * c_out for c_in, c_out in zip(widths, widths[1:], strict=False))
        side = IMAGE_SIDE // 2 ** len(self.channels)
        return convs + (self.channels[-1] * side * side + 1) * self.hidden + (self.hidden + 1) * NUM_CLASSES

    def problems(self) -> Iterator[tuple[str, str]]:
        if not 1 <= len(self.channels) <= 5 or min(self.channels) < 1:
            yield "channels", (f"must be 1 to 5 positive widths (each block halves {IMAGE_SIDE}x{IMAGE_SIDE}), "
                               f"got {shown(self.channels)}")
        elif max(self.channels) > MAX_WIDTH:
            yield "channels", (f"must be widths <= {MAX_WIDTH:,} (32x the tutorial's widest block), "
                               f"got {shown(self.channels)}")
        yield from _in_range(self, "hidden", 1, MAX_HIDDEN, "32x the tutorial's 512")
        if not 0 <= self.dropout < 1:
            yield "dropout", f"must be in [0, 1), got {shown(self.dropout)}"


@dataclass(frozen=True)
class SeParams(CnnParams):
    """The same CNN with an SE block of this reduction ratio after each block's ReLU."""

    gate: ClassVar[str | None] = "se"
    reduction: int = 16

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from super().problems()
        if self.reduction < 1:
            yield "reduction", f"must be >= 1, got {shown(self.reduction)}"
        elif self.channels and min(self.channels) < self.reduction:
            yield "reduction", f"must be <= the narrowest block ({min(self.channels)}), got {shown(self.reduction)}"

    def weights(self) -> int:
        return super().weights() + sum(2 * c * max(c // self.reduction, 1) for c in self.channels)


@dataclass(frozen=True)
class EcaParams(CnnParams):
    """The same CNN with ECA (Wang et al., CVPR 2020) where SE sits: a 1-D convolution across the channels instead
    of SE's two FC layers, its kernel size k from the block's width C (`kernel_size`), k weights per block."""

    gate: ClassVar[str | None] = "eca"
    gamma: float = 2.0
    b: float = 1.0

    def kernel_size(self, channels: int) -> int:
        """ECA-Net, Eq. 12: k = |log2(C)/gamma + b/gamma|_odd, the odd number nearest t = |log2(C)/gamma + b/gamma|.

        For t in [2m, 2m + 2) that is 2m + 1 (a tie, t even, goes up, as the authors' code does):
        C = 32, 64, 128 give t = 3, 3.5, 4 and k = 3, 3, 5.
        """
        t = abs(math.log2(channels) / self.gamma + self.b / self.gamma)
        return 2 * math.floor(t / 2) + 1

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from super().problems()
        if self.gamma <= 0:
            yield "gamma", f"must be > 0, got {shown(self.gamma)}"
        elif self.channels and min(self.channels) >= 1 and max(self.channels) <= MAX_WIDTH:
            widest = max(self.channels, key=lambda c: self.kernel_size(c) - 2 * c)
            if self.kernel_size(widest) > 2 * widest - 1:
                yield "gamma", (f"gives a kernel of {self.kernel_size(widest)} across {widest} channels (more than "
                                f"2 x {widest} - 1 reaches only zero padding): raise gamma or lower b")

    def weights(self) -> int:
        return super().weights() + sum(self.kernel_size(c) for c in self.channels)


# The kind registry: `kind:` in a models.<name> block -> the params class that describes it. What each kind builds
# is models.py's (NETWORKS). It lives here, not in models.py, so validating params.yaml never imports torch or
# the network code (every stage reads params; only training, evaluate and explain build networks). A variant of
# a kind is data (a models.<name> block and a train_<name> stage); a new kind is its params class here, its
# entry below and its network (models.py's NETWORKS).
KINDS: dict[str, type[CnnParams]] = {"cnn": CnnParams, "se": SeParams, "eca": EcaParams}


def kind_of(block: CnnParams) -> str:
    """The `kind:` that builds `block` (KINDS' key of its class)."""
    return next(kind for kind, cls in KINDS.items() if cls is type(block))


def default_models() -> dict[str, CnnParams]:
    """The card's two models: the tutorial CNN and the same CNN with SE."""
    return {"cnn": CnnParams(), "se": SeParams()}


@dataclass(frozen=True)
class EvaluateParams:
    """Test-set evaluation: batching, bootstrap, calibration bins, timing repeats."""

    batch_size: int = 500
    bootstrap_samples: int = 1000
    bootstrap_seed: int = 0
    ece_bins: int = 15
    latency_repeats: int = 10  # timed batch-1 passes per round (and a tenth as many large batches)
    timing_rounds: int = 5  # rounds interleaving the models: a timing is their median with their range
    throughput_batch: int = 256
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    baseline: str = "cnn"  # every other model of models: is a candidate, compared as candidate - baseline

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from _in_range(self, "batch_size", 1, MAX_BATCH, BATCH_WHY)
        yield from _in_range(self, "throughput_batch", 1, MAX_BATCH, BATCH_WHY)
        yield from _in_range(self, "bootstrap_samples", 1, 100_000,
                             "each resample draws every test image; the CI's percentiles are stable by 10,000")
        yield from _seed(self, "bootstrap_seed")
        yield from _in_range(self, "ece_bins", 1, 1000, "more bins than ~1 per 10 test images are mostly empty")
        yield from _in_range(self, "latency_repeats", 1, 1000, "the median of 1,000 timings is stable")
        yield from _in_range(self, "timing_rounds", 3, 100, "100 rounds' range is as wide as it will get",
                             low_why=" (fewer rounds give no range worth the name)")


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
            yield "images", f"must be a non-empty list of test indices >= 0, got {shown(self.images)}"
        elif len(self.images) > MAX_PANELS:
            yield "images", f"must list <= {MAX_PANELS} images ({PANELS_WHY}), got {len(self.images)}"
        yield from _in_range(self, "batch_size", 1, MAX_BATCH, BATCH_WHY)
        yield from _in_range(self, "faithfulness_samples", 1, MAX_BATCH,
                             "the CIFAR-10 test set; each sample costs deletion_steps forward passes")
        yield from _in_range(self, "deletion_steps", 1, IMAGE_SIDE**2,
                             f"one step per pixel of the {IMAGE_SIDE}x{IMAGE_SIDE} = {IMAGE_SIDE**2} pixels of an "
                             "image")
        for name in ("feature_map_channels", "top_channels", "mistakes"):
            yield from _in_range(self, name, 1, MAX_PANELS, PANELS_WHY)


@dataclass(frozen=True)
class TrackingParams:
    """MLflow: empty uri = sqlite:///<repo root>/mlflow.db (MLFLOW_TRACKING_URI wins)."""

    uri: str = ""
    experiment: str = "seecam"

    def problems(self) -> Iterator[tuple[str, str]]:
        problem = tracking_uri_problem(self.uri)
        if problem:
            yield "uri", problem
        elif masked(self.uri) != self.uri:
            yield "uri", (f"holds a password ({masked(self.uri)}), which DVC copies into dvc.lock and git: drop it "
                          "and set MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD (server) or the whole URI "
                          "in MLFLOW_TRACKING_URI (database)")
        if not self.experiment or not _one_line(self.experiment):
            yield "experiment", f"must be a non-empty name on one line, got {shown(self.experiment)}"
        elif len(self.experiment) > MLFLOW_MAX_EXPERIMENT_NAME:
            yield "experiment", (f"must be <= {MLFLOW_MAX_EXPERIMENT_NAME} characters (MLflow's limit), "
                                 f"got {len(self.experiment)}")


@dataclass(frozen=True)
class Params:
    """Everything in params.yaml, typed. `models` maps each model's name to its block, in params.yaml's order."""

    seed: int = 42
    data: DataParams = field(default_factory=DataParams)
    train: TrainParams = field(default_factory=TrainParams)
    models: dict[str, CnnParams] = field(default_factory=default_models, metadata={TAGGED: ("kind", KINDS)})
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    explain: ExplainParams = field(default_factory=ExplainParams)
    tracking: TrackingParams = field(default_factory=TrackingParams)

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from _seed(self, "seed")
        names = [str(name) for name in self.models]
        yield from _model_names_problems(self.models)
        if not 2 <= len(names) <= MAX_MODELS:
            yield "models", (f"must name at least two models (evaluate.baseline and a candidate), got {len(names)}"
                             if len(names) < 2 else
                             f"must name <= {MAX_MODELS} models ({MAX_MODELS_WHY}), got {len(names)}")
            return
        for name, block in self.models.items():
            if block.weights() > MAX_WEIGHTS:
                yield f"models.{name}", (f"must have <= {MAX_WEIGHTS:,} weights (400 MB of float32, x4 with gradients "
                                         f"and Adam's moments), got {block.weights():,}: narrow channels or hidden")
        if self.evaluate.baseline not in self.models:
            yield "evaluate.baseline", f"must be one of models: {', '.join(names)}, got {shown(self.evaluate.baseline)}"
        yield from self._layer_problems()

    def _layer_problems(self) -> Iterator[tuple[str, str]]:
        layers = explainable_layers(min(len(block.channels) for block in self.models.values()))
        if self.explain.layer not in layers:
            gated = re.fullmatch(r"block\d+\.(\w+)", self.explain.layer)
            owners = [name for name, block in self.models.items() if gated and block.gate == gated[1]]
            only = f" exists only in {', '.join(owners)}; it" if owners else ""
            every = "both" if len(self.models) == 2 else "all"
            yield "explain.layer", (f"{shown(self.explain.layer)}{only} must be a feature-map (4-D) layer of "
                                    f"{every} models: {', '.join(layers)}")

    @property
    def candidates(self) -> list[str]:
        """Every model but evaluate.baseline, in params.yaml's order: each is compared against the baseline."""
        return [name for name in self.models if name != self.evaluate.baseline]

    def model(self, name: str) -> CnnParams:
        """The block of model `name` (params.yaml's models.<name>)."""
        if name not in self.models:
            raise SeecamError(f"unknown model {shown(name)}: params.yaml's models are {', '.join(self.models)}; "
                              f"a new one is a models.{name} block there and a {train_stage(name)} stage in dvc.yaml")
        return self.models[name]



def _model_names_problems(models: Mapping[Any, CnnParams]) -> Iterator[tuple[str, str]]:
    for name in models:
        if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
            yield "models", (f"has a model named {shown(name)}: a name is lowercase letters, digits and _, starting "
                             "with a letter, at most 32 characters (it names files, a DVC stage and MLflow tags)")
        elif name in RESERVED_NAMES:
            yield "models", (f"has a model named {shown(name)}, a key of the metrics files beside the models "
                             f"({', '.join(RESERVED_NAMES)}); choose another name")


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; raise SeecamError naming the first bad key."""
    return load_config(Params, path)


def parse_params(raw: Mapping[str, Any], source: str = "params") -> Params:
    """Build Params from a plain mapping, checking keys, types and values."""
    return parse_config(Params, raw, source)
