"""Capture activations and gradients of named layers with forward hooks and tensor hooks.

Why this shape:

* Module backward hooks are avoided. The deprecated `register_backward_hook`
  reports the gradient of the module's *last* op only, which is wrong for
  modules made of several ops (a block of conv -> BN -> ReLU -> pool, an SE
  block). `register_full_backward_hook` is correct, but breaks when the
  module's output is modified in place afterwards (our blocks are followed by
  `ReLU(inplace=True)`). A forward hook that registers a *tensor* hook on the
  module's output gets the exact gradient of that output in every case; the
  tensor hook may also return a modified gradient.
* Activations are stored as clones: an in-place op after the hooked layer
  (ReLU(inplace=True)) would otherwise rewrite what we captured.
* `graph_from` cuts the graph at a layer's output: the output becomes a leaf
  that requires grad, and the rest of the model runs on a *clone* of it, so
  the in-place ReLU after a conv or BN acts on the clone (autograd forbids
  in-place ops on such a leaf) and every 4-D layer can be explained.
* Everything is registered inside a context manager that removes every hook
  and restores the model's train/eval mode and the grad mode on exit, also on
  error, so repeated use leaks nothing.
* Gradients are taken with `torch.autograd.grad` (see explain/cam.py), which
  never writes parameters' `.grad`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from seecam.errors import SeecamError

GradientHook = Callable[[torch.Tensor], torch.Tensor | None]


@dataclass
class Recording:
    """What the hooks saw during the forward (and backward) passes run inside `record`."""

    activations: dict[str, torch.Tensor] = field(default_factory=dict)  # detached clones
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)  # live outputs, to differentiate w.r.t.
    gradients: dict[str, torch.Tensor] = field(default_factory=dict)  # filled during backward


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
    gradient_hook: GradientHook | None = None,
    eval_mode: bool = True,
    gradients: bool = True,
) -> Iterator[Recording]:
    """Record the outputs of `layers` (and their gradients) for forward passes run inside the block.

    graph_from: the autograd graph starts at this layer's output. The forward runs without a graph up
        to it, so a backward from the class score touches only the layers after it: what Grad-CAM needs.
    gradient_hook: applied to each recorded output's gradient; may return a replacement gradient.
    gradients: False records activations only, without building an autograd graph.
    Grad is enabled locally (also under an outer `torch.no_grad()`); on exit hooks are removed and the
    model's mode and the grad mode are restored.
    """
    modules = {name: named_layer(model, name) for name in {*layers, *([graph_from] if graph_from else [])}}
    recording = Recording()
    handles: list[torch.utils.hooks.RemovableHandle] = []

    def on_gradient(name: str) -> Callable[[torch.Tensor], torch.Tensor | None]:
        def hook(grad: torch.Tensor) -> torch.Tensor | None:
            replaced = gradient_hook(grad) if gradient_hook else None
            recording.gradients[name] = (grad if replaced is None else replaced).detach()
            return replaced

        return hook

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
                if output.requires_grad:
                    handles.append(output.register_hook(on_gradient(name)))
            return replaced

        return hook

    was_training, grad_was_enabled = model.training, torch.is_grad_enabled()
    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(on_forward(name)))
        if eval_mode:
            model.eval()
        torch.set_grad_enabled(gradients and graph_from is None)
        yield recording
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
        torch.set_grad_enabled(grad_was_enabled)


@contextmanager
def tensor_hook(tensor: torch.Tensor, hook: GradientHook) -> Iterator[None]:
    """A gradient hook on one tensor for the duration of the block (it may modify the gradient)."""
    handle = tensor.register_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def output_shapes(model: nn.Module, example: torch.Tensor) -> dict[str, torch.Size]:
    """The output shape of every named module for `example` (one forward pass, no autograd graph)."""
    names = [name for name, _ in model.named_modules() if name]
    with record(model, names, gradients=False) as recording:
        model(example)
    return {name: recording.activations[name].shape for name in names if name in recording.activations}


def hook_count(model: nn.Module) -> int:
    """Forward and backward hooks currently registered on the model's modules (for leak checks)."""
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
