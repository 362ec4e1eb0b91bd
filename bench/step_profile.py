"""Where a CPU training step's time goes: each op's share of the step, and the FLOP rate of the convolutions and
matrix products (oneDNN's and MKL's kernels, not seecam's) against the matmul peak measured in the same run.

The step is the stage's: channels_last model, fused Adam, batch 64, images from seecam's augmentation (timed
too, per 64 images), fp32. FLOPs per op come from torch.utils.flop_counter over one step (a convolution's
backward computes its input's and its weights' gradients: 2 x the forward's FLOPs, but none for the first
convolution's input). A step that ran all its FLOPs at the convolutions' rate would set the ceiling for the
fraction of the peak that bench/train_throughput.py prints; what the other ops take is the rest.

    .venv/bin/python bench/step_profile.py [--steps 30] [--models cnn se]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_throughput import MODELS, PEAK_SIZE, peak_seconds  # noqa: E402

from seecam.allocator import keep_freed_memory  # noqa: E402
from seecam.augment import Augmenter  # noqa: E402
from seecam.models import build_model  # noqa: E402
from seecam.params import Params  # noqa: E402

BATCH, POOL = 64, 16  # a pool of different batches: one batch over and over would train its gradients to zero
HEAVY = ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::mm", "aten::addmm")


def step_function(name: str):
    """The stage's training step over a pool of augmented batches, and the augmentation's ms per 64 images."""
    torch.manual_seed(0)
    model = build_model(name, Params().model(name)).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    augment = Augmenter(Params().train.augment, torch.device("cpu"), model.normalization)
    generator = torch.Generator().manual_seed(0)
    raw = [torch.randint(0, 256, (4 * BATCH, 3, 32, 32), dtype=torch.uint8, generator=generator) for _ in range(8)]
    seconds = []
    for chunk in raw:  # the stage's chunks of 256; the first two warm up
        began = time.perf_counter()
        augment(chunk, generator)
        seconds.append(time.perf_counter() - began)
    augment_ms = statistics.median(seconds[2:]) * 1000 / 4
    images = torch.cat([augment(chunk, generator) for chunk in raw[:4]])
    batches = [x.contiguous(memory_format=torch.channels_last) for x in images.split(BATCH)][:POOL]
    labels = torch.randint(0, 10, (POOL, BATCH), generator=generator)
    count = [0]

    def step() -> None:
        i = count[0] % len(batches)
        count[0] += 1
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(batches[i]), labels[i]).backward()
        optimizer.step()

    return step, augment_ms


def op_flops(step) -> dict[str, float]:
    """FLOPs of one step by aten op name (as the profiler names them)."""
    with FlopCounterMode(display=False) as counter:
        step()
    flops: dict[str, float] = defaultdict(float)
    for op, value in counter.get_flop_counts()["Global"].items():
        name = str(op).split(".")[-1]
        flops[{"convolution": "aten::mkldnn_convolution"}.get(name, f"aten::{name}")] += value
    return flops


def profile_step(name: str, steps: int) -> tuple[list, dict[str, float], float, float]:
    """The profiler's events (largest first), FLOPs by op, ms a step (profiler included), augmentation ms/64."""
    step, augment_ms = step_function(name)
    flops = op_flops(step)
    for _ in range(10):
        step()
    began = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            step()
    step_ms = (time.perf_counter() - began) * 1000 / steps  # with the profiler's own overhead
    return sorted(profiler.key_averages(), key=lambda e: -e.self_cpu_time_total), flops, step_ms, augment_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS)
    args = parser.parse_args()
    keep_freed_memory()  # as fit does
    peaks = peak_seconds(torch.device("cpu"), 5)
    profiles = {name: profile_step(name, args.steps) for name in args.models}
    peaks += peak_seconds(torch.device("cpu"), 5)  # before and after: load that comes and goes hits both
    peak = 2 * PEAK_SIZE**3 / min(peaks)  # the best round, as bench/train_throughput.py takes it
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; matmul peak {peak / 1e9:,.0f} GFLOP/s "
          f"({PEAK_SIZE}^2 fp32, the best of 10 rounds before and after, "
          f"{2 * PEAK_SIZE**3 / max(peaks) / 1e9:,.0f}-{2 * PEAK_SIZE**3 / min(peaks) / 1e9:,.0f}); batch {BATCH}, "
          f"{args.steps} profiled steps after 10")
    for name, (events, flops, step_ms, augment_ms) in profiles.items():
        total = sum(e.self_cpu_time_total for e in events)
        print(f"\n{name}: {step_ms:.1f} ms a step under the profiler, {sum(flops.values()) / 1e9:.2f} GFLOP a step; "
              f"augmentation {augment_ms:.1f} ms per 64 images (outside the step)")
        print(f"  {'op':40s} {'share':>6s} {'ms/step':>8s} {'GFLOP/s':>8s} {'of peak':>8s}")
        for event in events[:14]:
            ms = step_ms * event.self_cpu_time_total / total
            rate = flops.get(event.key, 0.0) / (ms / 1000) if event.key in flops else None
            shown = f"{rate / 1e9:8,.0f} {rate / peak:8.0%}" if rate else ""
            print(f"  {event.key[:40]:40s} {event.self_cpu_time_total / total:6.1%} {ms:8.2f} {shown}")
        heavy = sum(e.self_cpu_time_total for e in events if e.key in HEAVY) / total
        heavy_rate = sum(flops.get(k, 0.0) for k in HEAVY) / (step_ms * heavy / 1000)
        print(f"  convolutions and matrix products: {heavy:.0%} of the step at {heavy_rate / 1e9:,.0f} GFLOP/s "
              f"({heavy_rate / peak:.0%} of the peak); the other ops: {1 - heavy:.0%}")


if __name__ == "__main__":
    main()
