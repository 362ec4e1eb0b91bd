"""What a model costs: parameters, FLOPs, latency, throughput, peak memory.

FLOPs are counted by `torch.utils.flop_counter` on one image (2 FLOPs per
multiply-add of convolutions and matrix products; element-wise ops such as
BatchNorm, ReLU and the SE gate's sigmoid are not counted). Timings are
medians of repeated runs after warm-up, on the device the stage runs on.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

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


@torch.no_grad()
def measure_cost(model: torch.nn.Module, device: torch.device, repeats: int, batch: int) -> dict[str, float]:
    """Parameters, FLOPs/image, batch-1 latency (ms), large-batch throughput (images/s), CUDA peak memory (MB)."""
    model = model.to(device).eval()
    one = torch.randn(1, 3, 32, 32, device=device)
    many = torch.randn(batch, 3, 32, 32, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    cost = {
        "parameters": count_parameters(model),
        "flops_per_image": flops_per_image(model, device),
        "latency_ms": 1000 * median_seconds(lambda: model(one), repeats, device),
        "throughput_images_per_s": batch / median_seconds(lambda: model(many), max(3, repeats // 5), device),
    }
    if device.type == "cuda":
        cost["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return cost
