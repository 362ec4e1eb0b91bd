"""Whether and how to `torch.compile` the training step (`train.compile: auto | true | false`).

Compiling pays only when the time it saves exceeds the time it costs. Both are estimated from params alone,
never from timing this run, so the decision (and with it the numbers: compiled and eager kernels round
differently) is the same on every rerun and resume of one configuration on one machine:

    eager_seconds = epochs * ceil(images / batch) * STEP_SECONDS[device] * max(1, batch / 64)
    saved_seconds = eager_seconds * (1 - 1 / SPEEDUP[device])
    auto compiles  <=>  a toolchain is present  and  saved_seconds >= 1.5 * COMPILE_SECONDS[device]

The costs are conservative round figures for the default models (CPU: measured on 2 cores, where a compiled
step is no faster, so auto never compiles; CUDA figures are launch-bound estimates for batch 64). The graph
is compiled with `dynamic=False` for the full batch only: the last partial batch of an epoch runs eagerly,
because a recompile for it would make dynamo mark the batch dimension dynamic and then serve every full
batch from the slower dynamic-shape graph (cache entries are checked newest first). On CUDA the compiled
forward replays CUDA graphs (inductor_options).
"""

from __future__ import annotations

import importlib.util
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

Setting = Literal["auto", True, False]
Step = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

REFERENCE_BATCH = 64
STEP_SECONDS = {"cpu": 0.035, "cuda": 0.004}  # eager seconds per batch-64 step
# Compiled vs eager step on the stage's path. CPU: no faster (bench/train_throughput.py on 45,000 images,
# 2-core EPYC, two runs: CNN 1,313 and 1,328 img/s compiled vs 1,497 and 1,784 eager; SE 1,231 and 1,448 vs
# 1,288 and 1,407, i.e. -4% and +3%, within the noise), so auto never compiles there.
SPEEDUP = {"cpu": 1.0, "cuda": 3.0}
COMPILE_SECONDS = {"cpu": 90.0, "cuda": 40.0}  # one forward + backward graph, cold cache
PAYBACK = 1.5  # auto compiles when the expected saving is at least this many times the compile time


@dataclass(frozen=True)
class Decision:
    """What `train.compile` resolved to, and the one-line reason printed and logged with the run."""

    setting: Setting
    compiled: bool
    reason: str

    def line(self, label: str) -> str:
        return f"{label}: compile {'on' if self.compiled else 'off'} ({self.reason})"

    def mlflow_params(self) -> dict[str, str]:
        return {"compiled": str(self.compiled).lower(), "compile_reason": self.reason}


def toolchain_problem(device_type: str) -> str | None:
    """Why inductor cannot build kernels for this device, or None: C++ on CPU, triton on CUDA."""
    if device_type == "cpu":
        return None if shutil.which("c++") or shutil.which("g++") or shutil.which("clang++") else "no C++ compiler"
    if device_type == "cuda":
        return None if importlib.util.find_spec("triton") else "triton is not installed"
    return f"inductor is not used on {device_type}"


def decide(setting: Setting, device_type: str, images: int, batch_size: int, epochs: int,
           problem: str | None) -> Decision:
    """The compile decision for a run of `epochs` over `images` (pure: `problem` = toolchain_problem(...))."""
    if setting is True or setting is False:
        return Decision(setting, setting, f"train.compile {str(setting).lower()}")
    if problem:
        return Decision(setting, False, f"auto: {problem}")
    if SPEEDUP[device_type] <= 1.0:
        return Decision(setting, False, f"auto: a compiled step is no faster on {device_type} (measured)")
    steps = epochs * math.ceil(images / batch_size)
    eager = steps * STEP_SECONDS[device_type] * max(1.0, batch_size / REFERENCE_BATCH)
    saved, cost = eager * (1 - 1 / SPEEDUP[device_type]), COMPILE_SECONDS[device_type]
    pays = saved >= PAYBACK * cost
    return Decision(setting, pays, f"auto: {steps:,} steps, ~{_duration(eager)} eager; compile ~{cost:.0f} s "
                                   f"{'pays' if pays else 'would not pay'} for itself (saves ~{_duration(saved)})")


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def inductor_options(device_type: str) -> dict[str, bool]:
    """Inductor settings for this device (torch.compile takes a mode or options, not both).

    `triton.cudagraphs` on CUDA is `mode="reduce-overhead"`: a batch-64 step of this CNN is launch-bound,
    and CUDA graphs replay its many small kernels at once. `fallback_random` draws dropout masks from the
    same generator as eager, so a compiled run follows the eager run's numbers within float rounding.
    """
    return {"fallback_random": True} | ({"triton.cudagraphs": True} if device_type == "cuda" else {})


def compile_model(model: torch.nn.Module, device_type: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model compiled for one static batch shape (see the module docstring for why static)."""
    return torch.compile(model, dynamic=False, options=inductor_options(device_type))


class FallbackStep:
    """`compiled`, except that a failure on its first call (where compiling happens) warns and uses `eager`.

    The failed attempt may already have run the forward pass, so the state it touches before the optimiser
    step (BatchNorm running statistics, the dropout RNG) is restored before the eager retry.
    `compile_seconds` is that first call's duration: compiling the forward and backward graphs and one step.
    """

    def __init__(self, compiled: Step, eager: Step, model: torch.nn.Module) -> None:
        self.compiled, self.eager, self.model = compiled, eager, model
        self.chosen: Step | None = None
        self.compile_seconds = 0.0

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.chosen is not None:
            return self.chosen(x, y)
        began = time.perf_counter()
        try:
            return self._first(x, y)
        finally:
            self.compile_seconds = time.perf_counter() - began

    def _first(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        buffers = {name: b.clone() for name, b in self.model.named_buffers()}
        rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []  # dropout on CUDA
        try:
            out = self.compiled(x, y)
            self.chosen = self.compiled
            return out
        except Exception as error:  # noqa: BLE001 (any compiler failure: the eager step is always correct)
            print(f"warning: torch.compile failed, training eagerly instead: {_root_cause(error)}",
                  file=sys.stderr, flush=True)
            self.model.load_state_dict(buffers, strict=False)
            torch.set_rng_state(rng)
            if cuda_rng:
                torch.cuda.set_rng_state_all(cuda_rng)
            self.chosen = self.eager
            return self.eager(x, y)


def _root_cause(error: BaseException) -> str:
    """The innermost error's type and first line: dynamo wraps a backend's failure in several layers."""
    while (inner := getattr(error, "inner_exception", None) or error.__cause__) is not None:
        error = inner
    return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"
