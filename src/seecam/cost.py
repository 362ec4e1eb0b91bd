"""What a model costs: parameters, FLOPs, latency, throughput, peak memory.

Parameters and FLOPs are exact counts. FLOPs are counted by `torch.utils.flop_counter` on one image
(2 FLOPs per multiply-add of convolutions and matrix products; element-wise ops such as BatchNorm, ReLU
and the SE gate's sigmoid are not counted).

Timings are noisy: the same SE model measured 5.97 ms in one run and 4.37 ms in a rerun on a busy machine.
So each is taken in `rounds` rounds after a warm-up; a round times every model in turn (A, B, A, B, ...), so a
change of load hits all models alike, and gives each model the median of its `repeats` timed passes. A timing
is reported as the median of its round medians with their interquartile range: `latency_ms`, `latency_ms_q1`,
`latency_ms_q3`, and the same for `throughput_images_per_s`. Not their full range: on a machine at load 6 one
round's median was 416 ms among rounds of 0.7-0.9 ms. tables.better names a faster model only when the two
interquartile ranges do not overlap.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from seecam.models import count_parameters
from seecam.params import IMAGE_SIDE


def flops_per_image(model: torch.nn.Module, device: torch.device) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, IMAGE_SIDE, IMAGE_SIDE, device=device))
    return int(counter.get_total_flops())


def timed_rounds(runs: dict[str, Callable[[], object]], rounds: int, repeats: int, device: torch.device,
                 warmup: int = 3) -> dict[str, list[float]]:
    """Each name's seconds per call of its `run`, one median per round: `warmup` untimed calls each, then `rounds`
    rounds in which every run in turn makes `repeats` timed calls, synchronising the device so queued GPU work is
    counted."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for run in runs.values():
        for _ in range(warmup):
            run()
    sync()
    medians: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times = []
            for _ in range(repeats):
                began = time.perf_counter()
                run()
                sync()
                times.append(time.perf_counter() - began)
            medians[name].append(statistics.median(times))
    return medians


@contextmanager
def peak_memory(device: torch.device) -> Iterator[dict[str, float]]:
    """`peak_memory_mb` of the work in the block alone (CUDA only; filled in on exit).

    Peak allocated minus what was allocated on entry: the test set and anything else already on the
    device are not the model's cost. CPU and MPS have no such allocator statistics: the dict stays empty.
    """
    found: dict[str, float] = {}
    if device.type != "cuda":
        yield found
        return
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    yield found
    found["peak_memory_mb"] = (torch.cuda.max_memory_allocated(device) - before) / 2**20


@torch.no_grad()
def measure_costs(models: dict[str, torch.nn.Module], device: torch.device, repeats: int, batch: int,
                  rounds: int) -> dict[str, dict[str, float]]:
    """Per model: parameters, FLOPs/image, batch-1 latency (ms) and `batch`-image throughput (images/s) as median,
    _q1 and _q3 over `rounds` interleaved rounds (`repeats` latency passes and a tenth as many large batches each),
    CUDA peak memory (MB) of one large batch."""
    one = torch.randn(1, 3, IMAGE_SIDE, IMAGE_SIDE, device=device)
    many = torch.randn(batch, 3, IMAGE_SIDE, IMAGE_SIDE, device=device)
    costs: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        model.to(device).eval()
        with peak_memory(device) as peak:
            model(many)
        costs[name] = {"parameters": count_parameters(model), "flops_per_image": flops_per_image(model, device)} | peak
    latency = timed_rounds({name: _call(model, one) for name, model in models.items()}, rounds, repeats, device)
    large = timed_rounds({name: _call(model, many) for name, model in models.items()}, rounds,
                         max(1, repeats // 10), device)
    for name in models:
        costs[name] |= timing_spread("latency_ms", [1000 * s for s in latency[name]])
        costs[name] |= timing_spread("throughput_images_per_s", [batch / s for s in large[name]])
    return costs


def _call(model: torch.nn.Module, images: torch.Tensor) -> Callable[[], object]:
    return lambda: model(images)


def timing_spread(key: str, values: list[float]) -> dict[str, float]:
    """`key`: the median of the rounds' values; `key_q1`, `key_q3`: their quartiles (linear interpolation: with
    5 rounds, the 2nd and 4th values)."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {key: float(median), f"{key}_q1": float(q1), f"{key}_q3": float(q3)}
