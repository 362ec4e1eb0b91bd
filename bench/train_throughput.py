"""Training throughput (images/s, augmentation included) on the stage's own path, against the tutorial's loop,
each beside the fraction of the machine's matmul peak it reaches.

The headline times exactly what `python stages/train.py` runs for an epoch: `seecam.training_loop.fit` over
`training_splits` of a CIFAR-sized data set (45,000 train images after the default 5,000 held out, 703
batches of 64 and one of 8), the validation pass included, after a first epoch that warms up (and compiles).
Beside it, in the same run, the tutorial's epoch over the same 45,000 images:
  tutorial  torchvision PIL transforms (RandomCrop, flip, ColorJitter, RandomRotation, ToTensor, Normalize)
            in a DataLoader, Adam, NCHW (bench/tutorial.py): the training pass, then the test pass (10,000
            images) that its ReduceLROnPlateau steps on, as seecam's epoch ends with the validation pass its
            scheduler steps on; with no loader workers as the tutorial writes it, with 2 workers, and with no
            workers but the allocator setting fit makes (seecam/allocator.py), so the share of the ratio that
            setting alone buys shows;
  seecam    `default` compiles or not as `train.compile: auto` decides for the full default run
            (45,000 images x 50 epochs); the other setting is timed too, so auto can be checked.
Roofline: `matmul peak` is a variant too: a 2048 x 2048 matmul into a kept output, in the precision of the
training step (fp32 on a CPU; bf16 on CUDA, as `train.precision: auto` trains there), on the threads the
training uses, the median of 10 each round; the peak is the best round (other jobs can only slow a round, so
a fraction of the best is never flattered by them). A training image costs about 3 forward passes of FLOPs
(seecam.cost.flops_per_image; the backward computes two products per forward one), so a variant at R img/s
runs at R x 3 x FLOPs, printed as a fraction of that peak (validation's FLOPs are not counted).

On a CPU the variants alternate rounds (peak, tutorial, tutorial 2 workers, ..., seecam default, seecam
other, peak, ...), each in its own process as a user's training would run, so machine load hits all alike;
the first round is warm-up, and the median of the others is printed with their spread (min-max) and its
ratio to the tutorial's no-worker loop. Pixels are random (speed does not depend on them). Then the peak
resident memory of one full-data epoch in a child process. On CUDA (or with --per-epoch) the variants run
one after the other (a GPU has no neighbours to even out), each in its own process: seecam for --epochs
epochs, the first dropped (it compiles), the tutorial's loop for --tutorial-epochs full epochs (a loop bound
by PIL on the CPU has nothing to warm up).

    .venv/bin/python bench/train_throughput.py [--rounds 3] [--no-memory]  # the stage's path (~35 min, 2 cores)
    .venv/bin/python bench/train_throughput.py --headline --no-memory      # tutorial vs default only (~12 min)
    .venv/bin/python bench/train_throughput.py --images 6400 --rounds 3    # a quick look, not the headline
    python bench/train_throughput.py --device cuda [--epochs 3]            # seconds per epoch on a GPU (~4 min)
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import tutorial  # noqa: E402  (bench/tutorial.py: the tutorial's loop)

from seecam.allocator import keep_freed_memory  # noqa: E402
from seecam.atomic import write_json  # noqa: E402
from seecam.cost import flops_per_image, timed_rounds  # noqa: E402
from seecam.data.store import Dataset, Split  # noqa: E402
from seecam.models import build_model  # noqa: E402
from seecam.params import DataParams, Params, TrainParams  # noqa: E402
from seecam.training_loop import FitConfig, compile_decision, fit, training_splits, uses_bf16  # noqa: E402

FULL_TRAIN, FULL_VAL, FULL_TEST = 45_000, 5_000, 10_000  # the default run's split of CIFAR-10
MEMORY_TARGET_GB = 2.5
PEAK_SIZE, PEAK_REPEATS = 2048, 10
TRAINING_PASSES = 3  # FLOPs of a training image in forward passes: forward, and the backward's two products
MODELS = ("cnn", "se")
Round = Callable[[float], None]  # a variant calls it with each round's seconds
PEAK = "matmul peak"
TUTORIAL = "tutorial, no workers"


@dataclass(frozen=True)
class Variant:
    """One row of the table: the tutorial's loop (with `workers` loader processes), seecam's fit, or the peak."""

    label: str
    model: str
    kind: str  # "tutorial" | "seecam" | "peak"
    device: str = "cpu"
    workers: int = 0
    compiled: bool = False
    kept_memory: bool = False  # the tutorial with fit's allocator setting


def step_dtype(device: torch.device) -> torch.dtype:
    """What the default training step multiplies in: bf16 under autocast on CUDA, fp32 elsewhere."""
    return torch.bfloat16 if uses_bf16(TrainParams().precision, device) else torch.float32


def run_peak(variant: Variant, dataset: Dataset, rounds: int, done: Round) -> None:
    """Each round: the median seconds of one PEAK_SIZE^2 matmul. The output is kept: a fresh 16 MB output per
    call measured the page faults of mapping it (116 against 336 GFLOP/s on a 2-core Xeon), not arithmetic."""
    device = torch.device(variant.device)
    a, b = (torch.randn(PEAK_SIZE, PEAK_SIZE, device=device, dtype=step_dtype(device)) for _ in range(2))
    out = torch.empty_like(a)
    for _ in range(rounds):
        done(timed_rounds({"mm": lambda: torch.mm(a, b, out=out)}, 1, PEAK_REPEATS, device)["mm"][0])


def run_tutorial(variant: Variant, dataset: Dataset, rounds: int, done: Round) -> None:
    if variant.kept_memory:
        keep_freed_memory()
    device = torch.device(variant.device)
    torch.manual_seed(0)
    model = build_model(variant.model, Params().model(variant.model)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=Params().train.lr)
    held_out = validation_size(len(dataset.train.labels))
    images, labels = dataset.train.images[held_out:], dataset.train.labels[held_out:]  # as many as seecam trains on
    loader = tutorial.train_loader(images, labels, Params().train.normalize, variant.workers)
    test = tutorial.test_loader(dataset.test.images, dataset.test.labels, Params().train.normalize)
    for _ in range(rounds):
        began = time.perf_counter()
        tutorial.train_epoch(model, loader, optimizer, device)
        tutorial.test_epoch(model, test, device)  # its scheduler steps on the test loss, so every epoch scores it
        if device.type == "cuda":
            torch.cuda.synchronize()
        done(time.perf_counter() - began)


def run_seecam(variant: Variant, dataset: Dataset, rounds: int, done: Round) -> None:
    """The stage's epoch: training_splits (5,000 held out for validation) and fit, validation included."""
    device = torch.device(variant.device)
    data = replace(DataParams(), val_size=validation_size(len(dataset.train.labels)))  # 5,000 on the stage's path
    splits = training_splits(dataset, data, device=device)
    torch.manual_seed(0)
    train = replace(Params().train, epochs=rounds, compile=variant.compiled)
    fit(build_model(variant.model, Params().model(variant.model)), splits, FitConfig(train, 0, device, variant.model),
        on_epoch=lambda row, state: done(row.epoch_seconds))


RUNS = {"tutorial": run_tutorial, "seecam": run_seecam, "peak": run_peak}


def peak_seconds(device: torch.device, rounds: int) -> list[float]:
    """run_peak's rounds in this process."""
    seconds: list[float] = []
    run_peak(Variant(PEAK, "", "peak", device.type), random_dataset(0), rounds, seconds.append)
    return seconds


def _variant_process(variant: Variant, dataset: Dataset, rounds: int, my_turn, next_turn, results) -> None:
    """A variant's own process: wait for the turn, run a round, report its seconds, pass the turn on."""
    def done(elapsed: float) -> None:
        results.put((variant.label, elapsed))
        next_turn.release()
        my_turn.acquire()

    my_turn.acquire()
    try:
        RUNS[variant.kind](variant, dataset, rounds, done)
    except BaseException as error:  # noqa: BLE001 (reported by the parent)
        results.put((variant.label, repr(error)))
    next_turn.release()


def alternate(variants: list[Variant], dataset: Dataset, rounds: int) -> dict[str, list[float]]:
    """Run the variants' rounds in turn (A1 B1 C1 A2 B2 C2 ...), one at a time, each in its own process.

    A process keeps its variant's state (model, compiled graph, DataLoader workers) between rounds, and one
    variant's threads, heap and OpenMP pool never slow another's rounds, as they would in threads of one
    process (measured: seecam's eager CNN ran 1,600 img/s alone but 1,100-1,270 img/s when its rounds
    alternated with the tutorial's in threads of one process); a semaphore per variant passes the turn on.
    """
    context = multiprocessing.get_context("spawn")  # no fork of a process whose OpenMP threads already ran
    turns = [context.Semaphore(0) for _ in variants]
    results = context.Queue()
    processes = [context.Process(target=_variant_process,  # not daemonic: DataLoader workers are its children
                                 args=(v, dataset, rounds, turns[i], turns[(i + 1) % len(variants)], results))
                 for i, v in enumerate(variants)]
    for process in processes:
        process.start()
    turns[0].release()
    seconds: dict[str, list[float]] = {v.label: [] for v in variants}
    try:
        for _ in range(rounds * len(variants)):
            label, value = results.get()
            if isinstance(value, str):
                raise SystemExit(f"{label} failed: {value}")
            seconds[label].append(value)
            print(f"  {label}: round {len(seconds[label])} {value:.3g} s", file=sys.stderr, flush=True)
    except BaseException:
        for process in processes:  # a failed variant leaves the others waiting for their turn
            process.terminate()
        raise
    for process in processes:
        process.join()
    return seconds


@dataclass(frozen=True)
class Rate:
    """A variant's rate (img/s, or FLOP/s for the peak) over the rounds it counts: median and spread."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def spread(self, scale: float = 1.0) -> str:
        low, high = min(self.values) / scale, max(self.values) / scale
        return f"{low:,.0f}-{high:,.0f}" if len(self.values) > 1 else "one round"


def rates(variants: list[Variant], seconds: dict[str, list[float]], images: int,
          skip: dict[str, int]) -> dict[str, Rate]:
    """Per-round seconds -> rates, dropping each variant's first `skip[kind]` (warm-up) rounds."""
    out = {}
    for v in variants:
        kept = seconds[v.label][skip[v.kind]:]
        work = 2 * PEAK_SIZE**3 if v.kind == "peak" else images
        out[v.label] = Rate([work / s for s in kept])
    return out


def default_compile(device: torch.device) -> tuple[bool, str]:
    """What `train.compile: auto` decides for the full default run on this device, and the line that says why."""
    decision = compile_decision(TrainParams(), FULL_TRAIN, device)
    return decision.compiled, decision.line("default run (45,000 images x 50 epochs)")


def seecam_variants(name: str, device: str, compiled: bool) -> tuple[Variant, Variant]:
    """seecam's default (as auto decides) and the other compile setting."""
    default = Variant(f"seecam default ({'compiled' if compiled else 'eager'})", name, "seecam", device,
                      compiled=compiled)
    other = Variant(f"seecam {'eager' if compiled else 'compiled'}", name, "seecam", device, compiled=not compiled)
    return default, other


def throughput(args: argparse.Namespace) -> tuple[dict[str, dict[str, Rate]], str]:
    """CPU: the variants of each model alternate rounds; warm-up rounds dropped."""
    compiled, why = default_compile(torch.device("cpu"))
    dataset = random_dataset(args.images)
    rounds = args.rounds + 1
    measured: dict[str, dict[str, Rate]] = {}
    for name in args.models:
        default, other = seecam_variants(name, "cpu", compiled)
        variants = [Variant(PEAK, name, "peak"), Variant(TUTORIAL, name, "tutorial"), default]
        if not args.headline:
            variants += [other, Variant("tutorial, 2 workers", name, "tutorial", workers=2),
                         Variant("tutorial, memory kept", name, "tutorial", kept_memory=True)]
        print(f"{name}: {rounds} alternating rounds of {args.images} images", file=sys.stderr, flush=True)
        seconds = alternate(variants, dataset, rounds)
        measured[name] = rates(variants, seconds, args.images, {"peak": 1, "tutorial": 1, "seecam": 1})
    path = "the stage's path" if args.images == FULL_TRAIN else f"{args.images} images, NOT the stage's path"
    header = (f"torch {torch.__version__}, cpu, {torch.get_num_threads()} threads, {path}: an epoch of {args.images} "
              f"images ({scoring(args.images)}), batch 64, median of "
              f"{args.rounds} alternating rounds after 1 warm-up round [spread min-max]\n{why}")
    return measured, header


def per_epoch(args: argparse.Namespace) -> tuple[dict[str, dict[str, Rate]], str]:
    """GPU (or --per-epoch): each variant in turn in its own process, seconds per full epoch."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is visible (torch.cuda.is_available() is False); use --device cpu")
    compiled, why = default_compile(device)
    dataset = random_dataset(args.images)
    peak = Variant(PEAK, "", "peak", args.device)
    measured: dict[str, dict[str, Rate]] = {}
    for name in args.models:
        default, other = seecam_variants(name, args.device, compiled)
        runs = [(default, args.epochs), (Variant(TUTORIAL, name, "tutorial", args.device), args.tutorial_epochs)]
        if not args.headline:
            runs.insert(1, (other, args.epochs))
        # the peak in this process: nothing else runs on a GPU meanwhile (on a CPU, --per-epoch is a quick look)
        measured[name] = rates([peak], {PEAK: peak_seconds(device, 1)}, args.images, {"peak": 0})
        for variant, epochs in runs:
            print(f"{name}: {variant.label}, {epochs} round(s) of {args.images} images", file=sys.stderr, flush=True)
            seconds = alternate([variant], dataset, epochs)
            measured[name] |= rates([variant], seconds, args.images, {"peak": 0, "tutorial": 0, "seecam": 1})
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    header = (f"torch {torch.__version__}, {where}: an epoch of {args.images} images ({scoring(args.images)}), "
              f"batch 64; seecam {args.epochs} epochs, the first dropped; "
              f"the tutorial's loop {args.tutorial_epochs} epoch(s); medians [spread min-max]\n{why}")
    return measured, header


def report(measured: dict[str, dict[str, Rate]], header: str, images: int, device: torch.device) -> dict:
    """Print the header, the peak, one DEFAULT line per model, then every variant's img/s, ratio, s/epoch and
    fraction of the peak; return the same figures (--json)."""
    print(header)
    peaks = {name: rate.pop(PEAK) for name, rate in measured.items()}
    every = Rate([v for p in peaks.values() for v in p.values])
    peak = max(every.values)  # what the machine can do: a round that other jobs slowed says nothing about it
    print(f"{PEAK}: {peak / 1e9:,.0f} GFLOP/s ({PEAK_SIZE}^2 {str(step_dtype(device)).removeprefix('torch.')}, "
          f"the best of {len(every.values)} rounds [{every.spread(1e9)}], each the median of {PEAK_REPEATS})")
    flops = {name: TRAINING_PASSES * flops_per_image(build_model(name, Params().model(name)), torch.device("cpu"))
             for name in measured}
    for name, rate in measured.items():
        default = next(label for label in rate if label.startswith("seecam default"))
        ours, theirs = rate[default].median, rate[TUTORIAL].median
        print(f"DEFAULT {name}: {ours:,.0f} vs {theirs:,.0f} img/s = {ours / theirs:.2f}x the tutorial's loop; "
              f"{ours * flops[name] / peak:.0%} of the matmul peak (the tutorial's loop "
              f"{theirs * flops[name] / peak:.0%}; {flops[name] / 1e6:.1f} MFLOP a training image)")
    print(f"{'model':6s} {'variant':26s} {'img/s':>7s} {'[min-max]':>15s} {'ratio':>6s} {'s/epoch':>8s} {'peak':>5s}")
    figures: dict = {"header": header, "device": str(device), "images": images, "peak_flops": peak, "models": {}}
    for name, rate in measured.items():
        figures["models"][name] = {}
        for label, value in rate.items():
            row = {"img_per_s": value.median, "min": min(value.values), "max": max(value.values),
                   "ratio": value.median / rate[TUTORIAL].median, "seconds_per_epoch": images / value.median,
                   "peak_fraction": value.median * flops[name] / peak}
            figures["models"][name][label] = row
            print(f"{name:6s} {label:26s} {row['img_per_s']:7,.0f} {'[' + value.spread() + ']':>15s} "
                  f"{row['ratio']:5.2f}x {row['seconds_per_epoch']:8.1f} {row['peak_fraction']:5.0%}")
    return figures


def scoring(images: int) -> str:
    """What each epoch scores after training, for the header: the pass each loop's LR scheduler steps on."""
    return (f"seecam's includes validating {images * FULL_VAL // FULL_TRAIN}, the tutorial's scoring "
            f"{images * FULL_TEST // FULL_TRAIN} test images")


def validation_size(train_and_validation: int) -> int:
    """The stage's 1:9 split of validation and training images: 5,000 of 50,000 on the stage's path."""
    return train_and_validation * FULL_VAL // (FULL_TRAIN + FULL_VAL)


def random_dataset(train_images: int = FULL_TRAIN) -> Dataset:
    """`train_images` + validation images in the stage's proportion (5,000 for 45,000), and a test set the
    stage keeps loaded (10,000 for 45,000)."""
    rng = np.random.default_rng(0)

    def split(n: int) -> Split:
        return Split(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n))

    return Dataset(split(train_images * (FULL_TRAIN + FULL_VAL) // FULL_TRAIN),
                   split(train_images * FULL_TEST // FULL_TRAIN))


def one_full_epoch(name: str) -> None:
    """One epoch of the default configuration over the full data on the CPU (auto's compile decision)."""
    device = torch.device("cpu")
    splits = training_splits(random_dataset(), DataParams(), device=device)
    torch.manual_seed(0)
    train = replace(TrainParams(), epochs=1, compile=default_compile(device)[0])
    fit(build_model(name, Params().model(name)), splits, FitConfig(train, 0, device, name))


def peak_memory(name: str) -> float:
    """GB of peak resident memory of a child process training one full-data epoch (before any other child)."""
    subprocess.run([sys.executable, __file__, "--memory-child", name], check=True, stdout=subprocess.DEVNULL)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=FULL_TRAIN, help="training images an epoch (45,000: the stage's)")
    parser.add_argument("--rounds", type=int, default=3, help="CPU: timed rounds (after 1 warm-up round)")
    parser.add_argument("--headline", action="store_true", help="only the tutorial's loop and seecam's default")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--per-epoch", action="store_true", help="time variants one after the other (CUDA's way)")
    parser.add_argument("--epochs", type=int, default=3, help="per epoch: seecam's epochs (the first is dropped)")
    parser.add_argument("--tutorial-epochs", type=int, default=1, help="per epoch: the tutorial's loop's epochs")
    parser.add_argument("--no-memory", action="store_true", help="skip the full-data peak memory run")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        one_full_epoch(args.memory_child)
        return
    if args.device == "cuda" or args.per_epoch:
        if args.epochs < 2:
            parser.error("--epochs must be 2 or more: the first epoch warms up (and compiles) and is dropped")
        figures = report(*per_epoch(args), args.images, torch.device(args.device))
    else:
        memory = None if args.no_memory else peak_memory("se")  # first: RUSAGE_CHILDREN must not see loader workers
        figures = report(*throughput(args), args.images, torch.device("cpu"))
        if memory is not None:
            figures["peak_memory_gb"] = memory
            print(f"peak resident memory, se, one full-data epoch (45,000 + 5,000 images): {memory:.2f} GB "
                  f"(target <= {MEMORY_TARGET_GB} GB)")
    if args.json:
        write_json(args.json, figures)


if __name__ == "__main__":
    main()
