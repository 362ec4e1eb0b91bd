"""Fidelity: does seecam's `fit` train the tutorial's model as well as the tutorial's own loop, on the same images?

Both sides train the same model from the same initial weights on the same archive for the same epochs, under
the tutorial's protocol (all 50,000 train images, the LR scheduled on test loss, the test set scored after
every epoch):
  tutorial  bench/tutorial.py: torchvision PIL transforms in a DataLoader, fp32, Adam, ReduceLROnPlateau;
  seecam    seecam.training_loop.fit with default params but `data.val_size: 0` (test-loss scheduling) and the chosen
            `train.normalize` (`tutorial` = the tutorial's std), `train.compile` as `auto` decides.
The two run at once, each in its own process with half the cores, so a long run takes one wall-clock span;
their epoch seconds are under that contention (throughput lives in train_throughput.py).

It prints every epoch's test accuracy as it comes, then the table, and writes all of it to --out as JSON
after every epoch (a stopped run keeps what it measured), and each side's trained weights beside it. Then
the augmentation check: each side's trained model scores test images augmented by each pipeline (draws of
fresh random parameters): if the batched ops were not the tutorial's augmentation, accuracy on them and the
pixel statistics would differ (a model scores a little higher on the pipeline it was trained with).

    .venv/bin/python bench/fidelity.py /tmp/cifar10/cifar-10-binary.tar.gz [--model cnn] [--epochs 50] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import tutorial  # noqa: E402  (bench/tutorial.py: the tutorial's loop)

from seecam.atomic import atomic_path  # noqa: E402
from seecam.augment import Augmenter  # noqa: E402
from seecam.data.cifar_binary import read_archive  # noqa: E402
from seecam.data.fetch import file_md5  # noqa: E402
from seecam.history import EpochRow  # noqa: E402
from seecam.inference import to_device  # noqa: E402
from seecam.models import build_model  # noqa: E402
from seecam.normalize import Normalizer  # noqa: E402
from seecam.params import Params  # noqa: E402
from seecam.training_loop import FitConfig, TrainSplits, fit, seed_everything  # noqa: E402

SIDES = ("tutorial", "seecam")
CHECK_IMAGES, CHECK_DRAWS = 3000, 3
LAST = 5  # epochs averaged for the end-of-run figure (one epoch's test accuracy moves by ~0.2-0.3 pt)


def run_tutorial(args: argparse.Namespace, report) -> None:
    data = read_archive(args.archive)
    torch.manual_seed(args.seed)
    model = build_model(args.model, Params().model(args.model), args.normalize)
    rows = tutorial.train(model, tutorial.train_loader(data.train.images, data.train.labels, args.normalize),
                          tutorial.test_loader(data.test.images, data.test.labels, args.normalize), args.epochs)
    seconds = _clock()
    for row in rows:
        report("tutorial", row | {"epoch_seconds": seconds()})
    _finish("tutorial", model.eval(), data, args, report)


def run_seecam(args: argparse.Namespace, report) -> None:
    data = read_archive(args.archive)
    device = torch.device("cpu")
    test_x, test_y = to_device(data.test.images, device), torch.from_numpy(data.test.labels)
    splits = TrainSplits(to_device(data.train.images, device), torch.from_numpy(data.train.labels), test_x, test_y,
                         "test")  # what training_splits builds for data.val_size: 0
    train = replace(Params().train, epochs=args.epochs, normalize=args.normalize)
    seed_everything(args.seed)
    model = build_model(args.model, Params().model(args.model), args.normalize)

    def on_epoch(row: EpochRow, state: dict[str, Any]) -> None:
        report("seecam", {"epoch": row.epoch, "train_loss": row.train_loss, "train_acc": row.train_acc,
                          "test_loss": row.val_loss, "test_acc": row.val_acc, "lr": row.lr,
                          "epoch_seconds": row.epoch_seconds})

    fit(model, splits, FitConfig(train, args.seed, device, f"seecam {args.model}"), on_epoch=on_epoch)
    _finish("seecam", model.cpu().to(memory_format=torch.contiguous_format).eval(), data, args, report)


def _finish(side: str, model: torch.nn.Module, data, args: argparse.Namespace, report) -> None:
    """Keep the trained weights beside the results, and run the augmentation check with this side's model."""
    torch.save(model.state_dict(), args.out.with_suffix(f".{side}.pt"))
    labels = torch.from_numpy(data.test.labels[:CHECK_IMAGES])
    report("check", {side: augmentation_check(model, data.test.images[:CHECK_IMAGES], labels, args.normalize)})


def augmentation_check(model: torch.nn.Module, images: np.ndarray, labels: torch.Tensor,
                       normalization: str) -> dict[str, list[dict[str, float]]]:
    """Accuracy of one trained model on test images augmented by each pipeline, and pixel statistics in [0, 1].

    Zero pixels (padding and rotation fill) are those below half a uint8 step: seecam's are recovered from
    its normalised output, which float rounding moves off exact zero.
    """
    pil = tutorial.augmentations()
    as_tensor = tutorial.test_transform(normalization).transforms[0]  # ToTensor
    normalize = Normalizer(torch.device("cpu"), normalization)
    ours = Augmenter(Params().train.augment, torch.device("cpu"), normalization)
    generator = torch.Generator().manual_seed(0)
    out: dict[str, list[dict[str, float]]] = {"tutorial": [], "seecam": []}
    for _ in range(CHECK_DRAWS):
        theirs = torch.stack([as_tensor(_compose(pil, Image.fromarray(image))) for image in images])
        batched = ours(to_device(images, torch.device("cpu")), generator) * normalize.std + normalize.mean
        for side, pixels in (("tutorial", theirs), ("seecam", batched.clamp(0, 1))):
            with torch.no_grad():
                hits = torch.cat([model(normalize(x)).argmax(1) for x in pixels.split(500)]) == labels
            out[side].append({"acc": hits.float().mean().item(), "mean": pixels.mean().item(),
                              "std": pixels.std().item(), "zero_share": (pixels < 0.5 / 255).float().mean().item()})
    return out


def _compose(ops: list, image: Image.Image) -> Image.Image:
    for op in ops:
        image = op(image)
    return image


def _clock():
    """Seconds since the previous call (the tutorial's epoch: train pass and test pass)."""
    last = [time.perf_counter()]

    def seconds() -> float:
        now = time.perf_counter()
        elapsed, last[0] = now - last[0], now
        return elapsed

    return seconds


def _side_process(side: str, args: argparse.Namespace, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    try:
        (run_tutorial if side == "tutorial" else run_seecam)(args, lambda kind, row: queue.put((kind, row)))
    except BaseException as error:  # noqa: BLE001 (reported by the parent)
        queue.put(("error", f"{side}: {error!r}"))
    queue.put(("done", side))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both sides at once, each in its own spawned process; results saved to args.out after every epoch."""
    threads = max(1, (os.cpu_count() or 2) // len(args.sides))
    results: dict[str, Any] = {"archive": str(args.archive), "archive_md5": file_md5(args.archive),
                               "model": args.model, "epochs": args.epochs, "seed": args.seed,
                               "normalize": args.normalize, "threads_per_side": threads, "torch": torch.__version__,
                               **{side: [] for side in args.sides}}
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_side_process, args=(side, args, threads, queue)) for side in args.sides]
    for process in processes:
        process.start()
    running = set(args.sides)
    try:
        while running:
            kind, row = queue.get()
            if kind == "done":
                running.discard(row)
            elif kind == "error":
                raise SystemExit(row)
            elif kind == "check":
                results.setdefault("augmentation_check", {}).update(row)
            else:
                results[kind].append(row)
                print(f"{kind:8s} epoch {row['epoch']:3d}/{args.epochs}: test_acc {row['test_acc']:.4f} "
                      f"test_loss {row['test_loss']:.4f} lr {row['lr']:.3g} {row['epoch_seconds']:.0f}s", flush=True)
            _save(args.out, results)
    finally:
        for process in processes:
            process.terminate()
            process.join()
    return results


def _save(path: Path, results: dict[str, Any]) -> None:
    with atomic_path(path) as temp:
        temp.write_text(json.dumps(results, indent=1) + "\n")


def table(results: dict[str, Any]) -> str:
    """Per-epoch test accuracy of both sides, then the end-of-run summary and the augmentation check."""
    sides = [side for side in SIDES if results.get(side)]
    lines = [f"{results['model']}, seed {results['seed']}, normalize {results['normalize']}, {results['archive']}",
             "epoch  " + "  ".join(f"{side:>9s}" for side in sides)]
    for i in range(max(len(results[side]) for side in sides)):
        cells = [f"{results[side][i]['test_acc'] * 100:8.2f}%" if i < len(results[side]) else " " * 9
                 for side in sides]
        lines.append(f"{i + 1:5d}  " + "  ".join(cells))
    lines.append(f"{'':27s}" + "  ".join(f"{side:>9s}" for side in sides))
    lines.append(f"{'epochs run':27s}" + "  ".join(f"{len(results[side]):9d}" for side in sides))
    for label, pick in (("test acc, last epoch run", lambda rows: rows[-1]["test_acc"]),
                        (f"mean of the last {LAST} epochs",
                         lambda rows: statistics.mean(r["test_acc"] for r in rows[-LAST:])),
                        ("best epoch", lambda rows: max(r["test_acc"] for r in rows)),
                        ("median epoch seconds", lambda rows: statistics.median(r["epoch_seconds"] for r in rows))):
        cells = [pick(results[side]) for side in sides]
        lines.append(f"{label:27s}" + "  ".join(f"{c * 100:8.2f}%" if "seconds" not in label else f"{c:9.1f}"
                                                 for c in cells))
    for trained_by, check in results.get("augmentation_check", {}).items():
        lines.append(f"augmentation check: the {trained_by}-trained model on {CHECK_IMAGES} test images augmented "
                     f"by each pipeline, {CHECK_DRAWS} draws")
        for side, draws in check.items():
            stats = {key: (min(d[key] for d in draws), max(d[key] for d in draws)) for key in draws[0]}
            lines.append(f"  {side:8s} " + ", ".join(f"{key} {lo:.3f}-{hi:.3f}" for key, (lo, hi) in stats.items()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", type=Path, help="a cifar-10-binary.tar.gz (see ../shared/data/README.md)")
    parser.add_argument("--model", choices=list(Params().models), default="cnn")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--normalize", default="tutorial", help="train.normalize of both sides")
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    parser.add_argument("--out", type=Path,
                        help="results JSON (default: bench/results/fidelity-<model>-seed<seed>.json)")
    parser.add_argument("--table", action="store_true", help="print the table of an existing --out and stop")
    args = parser.parse_args()
    args.out = args.out or Path(__file__).parent / "results" / f"fidelity-{args.model}-seed{args.seed}.json"
    if args.table:
        print(table(json.loads(args.out.read_text())))
        return
    if not args.archive.is_file():
        raise SystemExit(f"{args.archive}: no such archive; build one with ../shared/data/build_cifar10_archive.py")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(table(run(args)))


if __name__ == "__main__":
    main()
