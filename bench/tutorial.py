"""The tutorial's own training loop, the baseline every benchmark measures seecam against.

torchvision PIL transforms per image in a DataLoader, fp32, Adam, NCHW, the test set scored after every
epoch and ReduceLROnPlateau stepped on its loss: what the tutorial writes, nothing of seecam's but the
model classes (the same architecture and initialisation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

from seecam.normalize import CIFAR10_MEAN, NORMALIZATIONS

BATCH_SIZE = 64


def augmentations() -> list:
    """The tutorial's train-time augmentations, before ToTensor and Normalize."""
    return [
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ColorJitter(0.2, 0.2, 0.2, 0.1),
        transforms.RandomRotation(15),
    ]


def train_transform(normalization: str) -> transforms.Compose:
    return transforms.Compose([*augmentations(), *test_transform(normalization).transforms])


def test_transform(normalization: str) -> transforms.Compose:
    normalize = transforms.Normalize(CIFAR10_MEAN, NORMALIZATIONS[normalization])
    return transforms.Compose([transforms.ToTensor(), normalize])


class PilDataset(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR10 does per item: uint8 array -> PIL -> transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def train_loader(images: np.ndarray, labels: np.ndarray, normalization: str, workers: int = 0) -> DataLoader:
    return DataLoader(PilDataset(images, labels, train_transform(normalization)), batch_size=BATCH_SIZE,
                      shuffle=True, num_workers=workers, persistent_workers=workers > 0)


def test_loader(images: np.ndarray, labels: np.ndarray, normalization: str) -> DataLoader:
    return DataLoader(PilDataset(images, labels, test_transform(normalization)), batch_size=1000)


def train_epoch(model: torch.nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                device: torch.device | None = None) -> tuple[float, float]:
    """One pass of the tutorial's loop; its running loss and accuracy. On a GPU each batch is copied there,
    as the tutorial's `images.to(device)` does."""
    model.train()
    running_loss, correct, seen = 0.0, 0, 0
    for x, y in loader:
        if device is not None:
            x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        outputs = model(x)
        loss = F.cross_entropy(outputs, y)
        loss.backward()
        optimizer.step()
        running_loss += loss.item() * len(y)  # the tutorial's running_loss += loss.item()
        correct += outputs.argmax(1).eq(y).sum().item()
        seen += len(y)
    return running_loss / seen, correct / seen


@torch.no_grad()
def test_epoch(model: torch.nn.Module, loader: DataLoader, device: torch.device | None = None) -> tuple[float, float]:
    """Mean loss and accuracy on the test loader, in eval mode (each batch copied to `device`, as in training)."""
    model.eval()
    loss, correct, seen = 0.0, 0, 0
    for x, y in loader:
        if device is not None:
            x, y = x.to(device), y.to(device)
        outputs = model(x)
        loss += F.cross_entropy(outputs, y, reduction="sum").item()
        correct += outputs.argmax(1).eq(y).sum().item()
        seen += len(y)
    return loss / seen, correct / seen


def train(model: torch.nn.Module, train_data: DataLoader, test_data: DataLoader, epochs: int,
          lr: float = 1e-3) -> Iterator[dict[str, float]]:
    """The tutorial's whole protocol: Adam, then after each epoch the test set and the LR scheduled on its loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=3)
    for epoch in range(1, epochs + 1):
        lr_now = optimizer.param_groups[0]["lr"]
        train_loss, train_acc = train_epoch(model, train_data, optimizer)
        test_loss, test_acc = test_epoch(model, test_data)
        scheduler.step(test_loss)
        yield {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "test_loss": test_loss,
               "test_acc": test_acc, "lr": lr_now}
