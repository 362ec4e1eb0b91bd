"""The tutorial CNN and the same CNN with a channel-attention gate in each block (SE, ECA).

    cnn: [conv3x3 -> BatchNorm -> ReLU -> MaxPool2] x 3 (32, 64, 128 channels)
         -> flatten -> FC 2048->512 -> ReLU -> Dropout 0.5 -> FC 512->10
    se:  the same, with SE after each block's ReLU, before pooling: MaxPool2(x * s).
    eca: the same, with ECA (eca.py) where SE sits.

A gate's channel weights s are positive (a sigmoid), and max-pooling commutes with a positive per-channel scale
exactly (rounding is monotone): MaxPool2(x * s) = MaxPool2(x) * s. So a block computes s from x and rescales
the pooled quarter of the values, not all of them (what that saves: docs/performance.md). The gate module
(`blockN.se`, `blockN.eca`) outputs s (B x C); `blockN.pool` outputs the rescaled, pooled activations, the same
values as pooling x * s.

Module names are stable (`block1.conv`, `block3.se`, `block3.eca`, `head.fc1`, ...) so hooks,
params and MLflow keys can name layers. A block's gate is named by its kind (params' `gate`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from seecam.config_loader import shown
from seecam.eca import EfficientChannelAttention
from seecam.errors import SeecamError
from seecam.normalize import DEFAULT_NORMALIZATION, NORMALIZATIONS
from seecam.params import IMAGE_SIDE, KINDS, NUM_CLASSES, CnnParams, EcaParams, SeParams, kind_of


class _Squeeze(torch.autograd.Function):
    """mean over H x W, whose gradient is a broadcast view (g / HW), never a tensor the size of the activations.

    autograd's own mean backward writes g / HW out in full, in NCHW whatever the input's layout, and the sum
    with the excitation's gradient then runs on mixed layouts. This view is added in place to the dense,
    channels_last gradient `_Excite` returns (autograd accumulates into a buffer it alone holds).
    """

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        (x,) = inputs
        ctx.shape = x.shape

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        n, c, h, w = ctx.shape
        return (grad / (h * w))[:, :, None, None].expand(n, c, h, w)


class _Excite(torch.autograd.Function):
    """x * e[:, :, None, None]; the gradients in the input's memory format: g * e and sum_HW(g * x)."""

    @staticmethod
    def forward(x: torch.Tensor, excitation: torch.Tensor) -> torch.Tensor:
        return x * excitation[:, :, None, None]

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor, torch.Tensor], output: torch.Tensor) -> None:
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, excitation = ctx.saved_tensors
        grad_x = grad * excitation[:, :, None, None] if ctx.needs_input_grad[0] else None
        grad_excitation = (grad * x).sum(dim=(2, 3)) if ctx.needs_input_grad[1] else None
        return grad_x, grad_excitation


class SqueezeExcitation(nn.Module):
    """SE block (Hu et al., 2018): the excitation sigmoid(W2 relu(W1 avgpool(x))), no biases, which rescales x
    (after pooling: GatedMaxPool).

    The sigmoid is a module (`gate`) so a forward hook on `blockN.se.gate`
    captures the per-channel excitation (B x C) for the explain stage.
    The squeeze is an autograd Function of its own (`_Squeeze`): the same values as `x.mean`, with a backward
    that keeps the activations' layout and writes no activation-sized tensor (the SE step was 40 % slower than
    the CNN's, for +0.02 % FLOPs).
    """

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Linear(channels, hidden, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, channels, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.fc2(self.relu(self.fc1(_Squeeze.apply(x)))))


class GatedMaxPool(nn.MaxPool2d):
    """MaxPool2, then the gate's positive channel weights, if any: the values of pooling x * weights."""

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        pooled = super().forward(x)
        return pooled if weights is None else _Excite.apply(pooled, weights)


class ConvBlock(nn.Module):
    """conv3x3 -> BatchNorm -> ReLU [-> gate] -> MaxPool2; the gate, if any, is the submodule `gate_name`, and
    its channel weights rescale the pooled output."""

    def __init__(self, in_channels: int, out_channels: int, gate_name: str | None = None,
                 gate: nn.Module | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.gate_name = gate_name
        if gate_name is not None:
            self.add_module(gate_name, gate)
        self.pool = GatedMaxPool(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(self.conv(x)))
        if self.gate_name is None:
            return self.pool(x)
        return self.pool(x, getattr(self, self.gate_name)(x))


class Head(nn.Module):
    """flatten -> FC -> ReLU -> Dropout -> FC (class scores)."""

    def __init__(self, in_features: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.relu(self.fc1(x.flatten(1)))))


class Net(nn.Module):
    """The tutorial network; blocks are `block1`, `block2`, ... then `head`.

    `normalization` names the input normalisation it is trained on (normalize.NORMALIZATIONS); it travels in
    the model file's config, so every later consumer normalises as training did.
    """

    normalization: str = DEFAULT_NORMALIZATION

    def __init__(self, params: CnnParams) -> None:
        super().__init__()
        widths = [3, *params.channels]
        self.block_names = [f"block{i + 1}" for i in range(len(params.channels))]
        self.gate_name = params.gate
        for name, c_in, c_out in zip(self.block_names, widths, widths[1:], strict=False):
            gate = NETWORKS[type(params)](params, c_out) if params.gate else None
            self.add_module(name, ConvBlock(c_in, c_out, params.gate, gate))
        side = IMAGE_SIDE // 2 ** len(params.channels)
        self.head = Head(params.channels[-1] * side * side, params.hidden, params.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.block_names:
            x = getattr(self, name)(x)
        return self.head(x)


def gates(model: Net) -> list[str]:
    """The channel-attention gates' names (`blockN.<gate>.gate`, whose output is the B x C channel weights), in
    depth order; none for a kind without gates."""
    return [f"{block}.{model.gate_name}.gate" for block in model.block_names] if model.gate_name else []


def _se(params: SeParams, channels: int) -> nn.Module:
    return SqueezeExcitation(channels, params.reduction)


def _eca(params: EcaParams, channels: int) -> nn.Module:
    return EfficientChannelAttention(params.kernel_size(channels))


# What each kind builds in a block's gate slot (params.KINDS names the kinds and their params classes; a class's
# `gate` names the slot). A new kind of gate is its params class and KINDS entry in params.py, its network
# module and its entry here.
NETWORKS: dict[type[CnnParams], Callable[[Any, int], nn.Module]] = {SeParams: _se, EcaParams: _eca}


def build_model(name: str, params: CnnParams, normalization: str = DEFAULT_NORMALIZATION) -> Net:
    """Model `name` (params.yaml's models.<name>) from its block, expecting inputs normalised by `normalization`."""
    if type(params) not in KINDS.values():
        raise SeecamError(f"model {shown(name)}: {type(params).__name__} is no kind of params.KINDS")
    if normalization not in NORMALIZATIONS:
        raise SeecamError(f"unknown normalization {shown(normalization)}: allowed {', '.join(NORMALIZATIONS)}")
    model = Net(params)
    model.normalization = normalization
    return model


def model_config(name: str, params: CnnParams, normalization: str = DEFAULT_NORMALIZATION) -> dict[str, Any]:
    """Plain-data description that rebuilds the model (safe for weights_only loading): its kind builds it, its
    name says which model of params.yaml it is."""
    return {"name": name, "kind": kind_of(params), "params": dataclasses.asdict(params), "normalize": normalization}


def model_from_config(config: dict[str, Any]) -> Net:
    """Inverse of `model_config`."""
    if config.get("kind") not in KINDS:
        raise SeecamError(f"kind {shown(config.get('kind'))} is none of {', '.join(KINDS)}")
    return build_model(config["name"], KINDS[config["kind"]](**config["params"]), config["normalize"])


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
