"""Normalisation with a CIFAR-10 channel mean and std, as the tutorial's transforms.Normalize.

Two std sets are in use for the same mean: the per-pixel std over the CIFAR-10 train set (`cifar10`,
0.2470/0.2435/0.2616, seecam's default) and the one the tutorial copied from a popular repo (`tutorial`,
0.2023/0.1994/0.2010: the mean of per-image stds, hence smaller). `train.normalize` picks one; the model
file's config records it, so evaluate, explain and the logged MLflow model feed the network exactly the
inputs it was trained on without reading train.* params.
"""

from __future__ import annotations

import torch
from torch import nn

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
TUTORIAL_STD = (0.2023, 0.1994, 0.2010)
NORMALIZATIONS = {"cifar10": CIFAR10_STD, "tutorial": TUTORIAL_STD}  # name -> std; the mean is shared
DEFAULT_NORMALIZATION = "cifar10"


class Normalizer:
    """uint8 or [0, 1] float NCHW images -> (x - mean) / std, on the images' device."""

    def __init__(self, device: torch.device, normalization: str) -> None:
        self.mean = torch.tensor(CIFAR10_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(NORMALIZATIONS[normalization], device=device).view(1, 3, 1, 1)

    @classmethod
    def for_model(cls, model: nn.Module, device: torch.device) -> Normalizer:
        """The normaliser `model` was trained with (models.Net.normalization, from its file's config)."""
        return cls(device, model.normalization)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8:
            images = images.float() / 255.0
        return (images - self.mean) / self.std
