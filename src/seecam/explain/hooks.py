"""Capture activations and outputs of named layers with forward hooks, for Grad-CAM and feature maps.

Why this shape:

* Module backward hooks are avoided. The deprecated `register_backward_hook`
  reports the gradient of the module's *last* op only, which is wrong for
  modules made of several ops (a block of conv -> BN -> ReLU -> pool, an SE
  block). `register_full_backward_hook` is correct, but breaks when the
  module's output is modified in place afterwards (our blocks are followed by
  `ReLU(inplace=True)`). A forward hook keeps the module's live output, and
  `torch.autograd.grad` with respect to it (see explain/cam.py) gives the
  exact gradient of that output in every case, without ever writing
  parameters' `.grad`.
* Activations are stored as clones: an in-place op after the hooked layer
  (ReLU(inplace=True)) would otherwise rewrite what we captured.
* `graph_from` cuts the graph at a layer's output: the output becomes a leaf
  that requires grad, and the rest of the model runs on a *clone* of it, so
  the in-place ReLU after a conv or BN acts on the clone (autograd forbids
  in-place ops on such a leaf) and every 4-D layer can be explained.
* Everything is registered inside a context manager that removes every hook
  and restores the model's train/eval mode and the grad mode on exit, also on
  error, so repeated use leaks nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from seecam.errors import SeecamError


@dataclass
class Recording:
    """What the hooks saw during the forward passes run inside `record`."""

    activations: dict[str, torch.Tensor] = field(default_factory=dict)  # detached clones
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)  # live outputs, to differentiate w.r.t.


def named_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called `name`; an unknown name lists the ones that exist."""
    modules = dict(model.named_modules())
    if name not in modules or not name:
        known = ", ".join(n for n in modules if n)
        raise SeecamError(f"no layer named {name!r} in the model; known layers: {known}")
    return modules[name]


@contextmanager
def record(
    model: nn.Module,
    layers: list[str],
    *,
    graph_from: str | None = None,
    gradients: bool = True,
) -> Iterator[Recording]:
    """Record the outputs of `layers` for forward passes run inside the block, in eval mode.

    graph_from: the autograd graph starts at this layer's output. The forward runs without a graph up
        to it, so a backward from the class score touches only the layers after it: what Grad-CAM needs.
    gradients: False records activations only, without building an autograd graph.
    Grad is enabled locally (also under an outer `torch.no_grad()`); on exit hooks are removed and the
    model's mode and the grad mode are restored.
    """
    modules = {name: named_layer(model, name) for name in {*layers, *([graph_from] if graph_from else [])}}
    recording = Recording()
    handles: list[torch.utils.hooks.RemovableHandle] = []

    def on_forward(name: str) -> Callable:
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
            replaced = None
            if name == graph_from:
                torch.set_grad_enabled(True)
                output = output.detach().requires_grad_()
                # The model continues on a clone: a following in-place op (ReLU(inplace=True) after a BN)
                # may not modify a leaf, and must not rewrite the output we differentiate with respect to.
                replaced = output.clone()
            if name in layers:
                recording.activations[name] = output.detach().clone()
                recording.outputs[name] = output
            return replaced

        return hook

    was_training, grad_was_enabled = model.training, torch.is_grad_enabled()
    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(on_forward(name)))
        model.eval()
        torch.set_grad_enabled(gradients and graph_from is None)
        yield recording
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
        torch.set_grad_enabled(grad_was_enabled)


def output_shapes(model: nn.Module, example: torch.Tensor) -> dict[str, torch.Size]:
    """The output shape of every named module for `example` (one forward pass, no autograd graph)."""
    names = [name for name, _ in model.named_modules() if name]
    with record(model, names, gradients=False) as recording:
        model(example)
    return {name: recording.activations[name].shape for name in names if name in recording.activations}

