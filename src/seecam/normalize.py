"""Normalisation with the CIFAR-10 channel mean and std, as the tutorial's transforms.Normalize."""

from __future__ import annotations

import torch

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class Normalizer:
    """uint8 or [0, 1] float NCHW images -> normalised float, on the images' device."""

    def __init__(self, device: torch.device) -> None:
        self.mean = torch.tensor(CIFAR10_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(CIFAR10_STD, device=device).view(1, 3, 1, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8:
            images = images.float() / 255.0
        return (images - self.mean) / self.std

