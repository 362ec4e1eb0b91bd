"""What a model costs: parameters, FLOPs, latency, throughput, peak memory.

FLOPs are counted by `torch.utils.flop_counter` on one image (2 FLOPs per
multiply-add of convolutions and matrix products; element-wise ops such as
BatchNorm, ReLU and the SE gate's sigmoid are not counted). Timings are
medians of repeated runs after warm-up, on the device the stage runs on.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch.utils.flop_counter import FlopCounterMode

from seecam.models import count_parameters


def flops_per_image(model: torch.nn.Module, device: torch.device) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 32, 32, device=device))
    return int(counter.get_total_flops())


def median_seconds(run: Callable[[], object], repeats: int, device: torch.device, warmup: int = 3) -> float:
    """Median wall time of `run`, synchronising the device so queued GPU work is counted."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        run()
    sync()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


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
def measure_cost(model: torch.nn.Module, device: torch.device, repeats: int, batch: int) -> dict[str, float]:
    """Parameters, FLOPs/image, batch-1 latency (ms), large-batch throughput (images/s), CUDA peak memory (MB)."""
    model = model.to(device).eval()
    with peak_memory(device) as peak:
        one = torch.randn(1, 3, 32, 32, device=device)
        many = torch.randn(batch, 3, 32, 32, device=device)
        cost = {
            "parameters": count_parameters(model),
            "flops_per_image": flops_per_image(model, device),
            "latency_ms": 1000 * median_seconds(lambda: model(one), repeats, device),
            "throughput_images_per_s": batch / median_seconds(lambda: model(many), max(3, repeats // 5), device),
        }
    return cost | peak
