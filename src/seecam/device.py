"""Pick the compute device: `auto` = CUDA, else Apple MPS, else CPU."""

from __future__ import annotations

import torch

from seecam.errors import SeecamError


def resolve_device(name: str, key: str = "train.device") -> torch.device:
    """The torch device for a `*.device` param; a requested but missing accelerator is a user error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SeecamError(f"{key} is cuda but no CUDA GPU is visible; use auto or cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise SeecamError(f"{key} is mps but MPS is not available; use auto or cpu")
    return torch.device(name)


def exact_fp32(device: torch.device) -> None:
    """Evaluate and explain in full fp32 on CUDA: cuDNN's default TF32 convolutions round to ~1e-3 relative,
    and a CUDA run's metrics and CAMs should match a CPU run's within 1e-4 (tests/gpu). Training keeps the
    defaults (`train.precision` decides what it trades)."""
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
