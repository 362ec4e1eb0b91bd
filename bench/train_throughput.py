"""Training throughput (images/s, augmentation included): seecam vs a tutorial-style pipeline.

Both train the same model at batch 64 on the same images in the same process:
  baseline  torchvision PIL transforms (RandomCrop, flip, ColorJitter, RandomRotation,
            ToTensor, Normalize) in a DataLoader with 2 workers, Adam, NCHW;
  seecam    seecam.train.fit: on-device uint8 data, batched per-image augmentation.
Each epoch is timed; the median of the timed epochs (after a warm-up epoch) is reported.

    .venv/bin/python bench/train_throughput.py [--images 3200] [--epochs 3] [--no-compile]

seecam runs twice: eager (the default, train.compile=false) and with torch.compile.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from seecam.data.synthetic import make_synthetic  # noqa: E402
from seecam.models import build_model  # noqa: E402
from seecam.normalize import CIFAR10_MEAN, CIFAR10_STD  # noqa: E402
from seecam.params import Params  # noqa: E402
from seecam.train import TrainSplits, fit  # noqa: E402

TUTORIAL_TRANSFORM = transforms.Compose([
    transforms.RandomCrop(32, padding=4),
    transforms.RandomHorizontalFlip(),
    transforms.ColorJitter(0.2, 0.2, 0.2, 0.1),
    transforms.RandomRotation(15),
    transforms.ToTensor(),
    transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD),
])


class PilDataset(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR10 does per item: uint8 array -> PIL -> transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return TUTORIAL_TRANSFORM(Image.fromarray(self.images[i])), int(self.labels[i])


def baseline_epochs(name: str, params: Params, images: np.ndarray, labels: np.ndarray, epochs: int) -> list[float]:
    torch.manual_seed(0)
    model = build_model(name, params.model(name))
    optimizer = torch.optim.Adam(model.parameters(), lr=params.train.lr)
    loader = DataLoader(PilDataset(images, labels), batch_size=64, shuffle=True, num_workers=2,
                        persistent_workers=True)
    seconds = []
    for _ in range(epochs):
        began = time.perf_counter()
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            loss.item()  # the tutorial's running_loss += loss.item()
        seconds.append(time.perf_counter() - began)
    return seconds


def seecam_epochs(name: str, params: Params, images: np.ndarray, labels: np.ndarray, epochs: int) -> list[float]:
    torch.manual_seed(0)
    device = torch.device("cpu")
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(labels)
    splits = TrainSplits(x, y, x[:64], y[:64], "val")
    model = build_model(name, params.model(name))
    result = fit(model, splits, replace(params.train, epochs=epochs), seed=0, device=device)
    return [row["epoch_seconds"] for row in result.history]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3200)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after 1 warm-up epoch)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    args = parser.parse_args()
    data = make_synthetic(args.images, 10, seed=0)
    images, labels = data.train.images, data.train.labels
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.images} images/epoch, batch 64, "
          f"median of {args.epochs} epochs after 1 warm-up")
    print(f"{'model':6s} {'variant':10s} {'baseline img/s':>15s} {'seecam img/s':>13s} {'ratio':>6s}")
    for name in ("cnn", "se"):
        params = Params()
        base_rate = args.images / statistics.median(baseline_epochs(name, params, images, labels, args.epochs + 1)[1:])
        for compiled in (False, True)[: 1 if args.no_compile else 2]:
            variant = replace(params, train=replace(params.train, compile=compiled))
            seconds = seecam_epochs(name, variant, images, labels, args.epochs + 1)[1:]
            rate = args.images / statistics.median(seconds)
            label = "compile" if compiled else "eager"
            print(f"{name:6s} {label:10s} {base_rate:15.0f} {rate:13.0f} {rate / base_rate:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
