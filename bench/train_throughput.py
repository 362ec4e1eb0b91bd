"""Training throughput (images/s, augmentation included) on the stage's own path, against the tutorial's loop.

The headline times exactly what `python stages/train.py` runs for an epoch: `seecam.train.fit` over
`training_splits` of a CIFAR-sized data set (45,000 train images after the default 5,000 held out, 703
batches of 64 and one of 8), the validation pass included, in its second epoch (the first warms up and
compiles). Beside it, in the same run, the tutorial's loop over the same 45,000 images:
  tutorial  torchvision PIL transforms (RandomCrop, flip, ColorJitter, RandomRotation, ToTensor, Normalize)
            in a DataLoader, Adam, NCHW (bench/tutorial.py): the training pass only, with no loader
            workers as the tutorial writes it, with 2 workers, and with no workers but the allocator
            setting fit makes (seecam/allocator.py), so the share of the ratio that setting alone buys shows;
  seecam    `default` compiles or not as `train.compile: auto` decides for the full default run
            (45,000 images x 50 epochs); the other setting is timed too, so auto can be checked.
Variants alternate rounds (tutorial, tutorial 2 workers, seecam default, seecam other, tutorial, ...), each in
its own process as a user's training would run, so machine load hits all alike; the first round is warm-up
and the median of the others is reported with its ratio to the tutorial's no-worker loop. Pixels are random
(speed does not depend on them). Then the peak resident memory of one full-data epoch in a child process.

    .venv/bin/python bench/train_throughput.py [--rounds 1] [--no-memory]   # the stage's path (~10 min)
    .venv/bin/python bench/train_throughput.py --images 6400 --rounds 3     # a quick look, not the headline
    .venv/bin/python bench/train_throughput.py --device cuda [--epochs 3]   # per-epoch seconds on a GPU
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
from seecam.data.store import Dataset, Split  # noqa: E402
from seecam.models import build_model  # noqa: E402
from seecam.params import DataParams, Params, TrainParams  # noqa: E402
from seecam.train import compile_decision, fit, training_splits  # noqa: E402

FULL_TRAIN, FULL_VAL, FULL_TEST = 45_000, 5_000, 10_000  # the default run's split of CIFAR-10
MEMORY_TARGET_GB = 2.5
Round = Callable[[float], None]  # a variant calls it with each round's seconds

@dataclass(frozen=True)
class Variant:
    """One row of the table: the tutorial's loop (with `workers` loader processes) or seecam's fit."""

    label: str
    model: str
    kind: str  # "tutorial" | "seecam"
    workers: int = 0
    compiled: bool = False
    kept_memory: bool = False  # the tutorial with fit's allocator setting


def run_tutorial(variant: Variant, dataset: Dataset, rounds: int, done: Round) -> None:
    if variant.kept_memory:
        keep_freed_memory()
    torch.manual_seed(0)
    model = build_model(variant.model, Params().model(variant.model))
    optimizer = torch.optim.Adam(model.parameters(), lr=Params().train.lr)
    images, labels = dataset.train.images[FULL_VAL:], dataset.train.labels[FULL_VAL:]  # as many as seecam trains on
    loader = tutorial.train_loader(images, labels, Params().train.normalize, variant.workers)
    for _ in range(rounds):
        began = time.perf_counter()
        tutorial.train_epoch(model, loader, optimizer)
        done(time.perf_counter() - began)


def run_seecam(variant: Variant, dataset: Dataset, rounds: int, done: Round) -> None:
    """The stage's epoch: training_splits (5,000 held out for validation) and fit, validation included."""
    splits = training_splits(dataset, DataParams(), device=torch.device("cpu"))  # val_size 5,000
    torch.manual_seed(0)
    train = replace(Params().train, epochs=rounds, compile=variant.compiled)
    fit(build_model(variant.model, Params().model(variant.model)), splits, train, seed=0,
        device=torch.device("cpu"), on_epoch=lambda row, state: done(row["epoch_seconds"]), label=variant.model)


def _variant_process(variant: Variant, dataset: Dataset, rounds: int, my_turn, next_turn, results) -> None:
    """A variant's own process: wait for the turn, run a round, report its seconds, pass the turn on."""
    def done(elapsed: float) -> None:
        results.put((variant.label, elapsed))
        next_turn.release()
        my_turn.acquire()

    my_turn.acquire()
    try:
        (run_tutorial if variant.kind == "tutorial" else run_seecam)(variant, dataset, rounds, done)
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
            print(f"  {label}: round {len(seconds[label])} {value:.1f} s", file=sys.stderr, flush=True)
    except BaseException:
        for process in processes:  # a failed variant leaves the others waiting for their turn
            process.terminate()
        raise
    for process in processes:
        process.join()
    return seconds


def default_compile() -> tuple[bool, str]:
    """What `train.compile: auto` decides for the full default run on this CPU, and the line that says why."""
    decision = compile_decision(TrainParams(), FULL_TRAIN, torch.device("cpu"))
    return decision.compiled, decision.line("default run (45,000 images x 50 epochs)")


def throughput(args: argparse.Namespace) -> None:
    compiled, why = default_compile()
    default = f"seecam default ({'compiled' if compiled else 'eager'})"
    dataset = random_dataset(args.images)
    rounds = args.rounds + 1
    rates: dict[str, dict[str, float]] = {}
    for name in ("cnn", "se"):
        variants = [
            Variant("tutorial, no workers", name, "tutorial"),
            Variant("tutorial, 2 workers", name, "tutorial", workers=2),
            Variant("tutorial, memory kept", name, "tutorial", kept_memory=True),
            Variant(default, name, "seecam", compiled=compiled),
            Variant(f"seecam {'eager' if compiled else 'compiled'}", name, "seecam", compiled=not compiled),
        ]
        print(f"{name}: {rounds} alternating rounds of {args.images} images", file=sys.stderr, flush=True)
        rates[name] = {label: args.images / statistics.median(s[1:])
                       for label, s in alternate(variants, dataset, rounds).items()}
    path = "the stage's path" if args.images == FULL_TRAIN else f"{args.images} images, NOT the stage's path"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {path}: an epoch of {args.images} images "
          f"(seecam's includes validating {FULL_VAL}), batch 64, median of {args.rounds} alternating rounds after "
          "1 warm-up round")
    print(why)
    for name, rate in rates.items():
        ours, tutorial = rate[default], rate["tutorial, no workers"]
        print(f"DEFAULT {name}: {ours:.0f} vs {tutorial:.0f} img/s = {ours / tutorial:.2f}x the tutorial's loop")
    print(f"{'model':6s} {'variant':26s} {'img/s':>7s} {'ratio':>6s}")
    for name, rate in rates.items():
        for variant, value in rate.items():
            print(f"{name:6s} {variant:26s} {value:7.0f} {value / rate['tutorial, no workers']:5.2f}x")


def random_dataset(train_images: int = FULL_TRAIN) -> Dataset:
    """`train_images` + the 5,000 validation images, and a 10,000-image test set the stage keeps loaded."""
    rng = np.random.default_rng(0)

    def split(n: int) -> Split:
        return Split(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n))

    return Dataset(split(train_images + FULL_VAL), split(FULL_TEST))


def one_full_epoch(name: str, device: torch.device, epochs: int = 1) -> list[float]:
    """Epoch seconds of the default configuration over the full data; compile as auto decides for 50 epochs."""
    splits = training_splits(random_dataset(), DataParams(), device=device)
    compiled = compile_decision(TrainParams(), FULL_TRAIN, device).compiled
    torch.manual_seed(0)
    train = replace(TrainParams(), epochs=epochs, compile=compiled)
    result = fit(build_model(name, Params().model(name)), splits, train, seed=0, device=device, label=name)
    return [row["epoch_seconds"] for row in result.history]


def peak_memory(name: str) -> float:
    """GB of peak resident memory of a child process training one full-data epoch (before any other child)."""
    subprocess.run([sys.executable, __file__, "--memory-child", name], check=True, stdout=subprocess.DEVNULL)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # KiB on Linux


def on_cuda(args: argparse.Namespace) -> None:
    if not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is visible (torch.cuda.is_available() is False); use --device cpu")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {FULL_TRAIN} images an epoch, batch 64, "
          f"{compile_decision(TrainParams(), FULL_TRAIN, torch.device('cuda')).line('default')}")
    for name in ("cnn", "se"):
        seconds = one_full_epoch(name, torch.device("cuda"), args.epochs)
        print(f"{name}: epoch seconds {', '.join(f'{s:.1f}' for s in seconds)}; 50 epochs at the last epoch's pace "
              f"~{50 * seconds[-1] / 60:.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=FULL_TRAIN, help="training images an epoch (45,000: the stage's)")
    parser.add_argument("--rounds", type=int, default=1, help="timed rounds (after 1 warm-up round)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--epochs", type=int, default=3, help="--device cuda: full-data epochs to time")
    parser.add_argument("--no-memory", action="store_true", help="skip the full-data peak memory run")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        one_full_epoch(args.memory_child, torch.device("cpu"))
    elif args.device == "cuda":
        on_cuda(args)
    else:
        memory = None if args.no_memory else peak_memory("se")  # first: RUSAGE_CHILDREN must not see loader workers
        throughput(args)
        if memory is not None:
            print(f"peak resident memory, se, one full-data epoch (45,000 + 5,000 images): {memory:.2f} GB "
                  f"(target <= {MEMORY_TARGET_GB} GB)")


if __name__ == "__main__":
    main()
