"""Eval-mode BatchNorm folded into the convolution before it, for the explain stage's many forward passes.

In eval mode BN is a fixed per-channel affine map, so conv followed by BN is one convolution:

    W' = W * gamma / sqrt(var + eps)        b' = (b - mean) * gamma / sqrt(var + eps) + beta

On a CPU BN is a full extra read and write of every activation: a quarter of a forward pass of these
networks (measured with torch.profiler). Faithfulness scores ~2 x (deletion_steps + 1) forward passes
per image, so folding pays directly; results change by float rounding only (tests/unit/explain/test_cam.py).

The fold works on a copy (the caller's model is untouched) and replaces each folded `bn` by an Identity,
so layer names stay valid for hooks: `blockN.bn` then outputs what BN did. Only `blockN.conv` would
change meaning (it would output after BN), so a convolution named in `keep` is left unfolded.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batchnorm(model: nn.Module, keep: tuple[str, ...] = ()) -> nn.Module:
    """An eval-mode copy of `model` with each `conv` -> `bn` pair of a block folded into one convolution."""
    folded = copy.deepcopy(model).eval()
    for name, block in folded.named_modules():
        conv, bn = getattr(block, "conv", None), getattr(block, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and f"{name}.conv" not in keep:
            block.conv = fuse_conv_bn_eval(conv, bn).to(memory_format=_layout(conv.weight))
            block.bn = nn.Identity()
    return folded


def _layout(weight: torch.Tensor) -> torch.memory_format:
    """Keep the convolution in the memory format it came in (channels_last as seecam loads models)."""
    if weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format
