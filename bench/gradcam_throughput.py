"""Grad-CAM throughput (images/s): seecam's batched CAM vs the tutorial's one-image-at-a-time loop.

Same model (randomly initialised weights: speed does not depend on them), same target layer (block3),
same images, same run:
  baseline  per image: forward hook + full backward hook on the layer, forward, `.backward()` from the
            class score (parameters accumulate .grad), weights = mean gradient, ReLU, upsample, normalise
            in numpy: the loop most Grad-CAM tutorials show;
  seecam    seecam.explain.cam.cam_images on channels_last images and model (as the explain stage
            loads them): BatchNorm folded into the convolutions (explain/fold.py), chunks of 250
            images, one forward without a parameter graph and one backward from the scores to the
            layer per chunk.
The two variants alternate `--repeats` rounds (a busy machine slows both alike); medians are reported.

    .venv/bin/python bench/gradcam_throughput.py [--images 2000] [--baseline-images 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from seecam.explain.cam import cam_images  # noqa: E402
from seecam.inference import to_device  # noqa: E402
from seecam.models import build_model  # noqa: E402
from seecam.normalize import Normalizer  # noqa: E402
from seecam.params import Params  # noqa: E402


def tutorial_grad_cam(model: torch.nn.Module, images: torch.Tensor, layer: torch.nn.Module) -> list[np.ndarray]:
    store: dict[str, torch.Tensor] = {}
    forward = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    backward = layer.register_full_backward_hook(lambda m, gi, go: store.__setitem__("g", go[0]))
    normalize = Normalizer.for_model(model, images.device)
    maps = []
    try:
        for image in images:
            model.zero_grad()
            output = model(normalize(image[None]))
            output[0, output.argmax()].backward()
            weights = store["g"].mean(dim=(2, 3), keepdim=True)
            cam = torch.relu((weights * store["a"]).sum(dim=1, keepdim=True))
            cam = F.interpolate(cam, size=(32, 32), mode="bilinear", align_corners=False)[0, 0].detach().numpy()
            maps.append((cam - cam.min()) / (cam.max() - cam.min() + 1e-8))
    finally:
        forward.remove()
        backward.remove()
    return maps


def alternating(runs: list, repeats: int) -> list[float]:
    """Median seconds of each run, the runs taking turns in every round."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, spent in zip(runs, times, strict=True):
            began = time.perf_counter()
            run()
            spent.append(time.perf_counter() - began)
    return [statistics.median(spent) for spent in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--baseline-images", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    pixels = np.random.default_rng(0).integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    images = to_device(pixels, torch.device("cpu"))  # seecam's layout: channels_last, as the stages load it
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, layer block3, median of {args.repeats}")
    print(f"{'model':6s} {'tutorial img/s':>15s} {'seecam img/s':>13s} {'ratio':>6s}")
    tutorial = images[: args.baseline_images].contiguous()  # the tutorial's NCHW tensors
    for name in ("cnn", "se"):
        model = build_model(name, Params().model(name)).eval()
        ours_model = copy.deepcopy(model).to(memory_format=torch.channels_last)  # as load_model returns it
        tutorial_grad_cam(model, tutorial[:5], model.block3)  # warm-up
        cam_images(ours_model, images[:250], "block3")
        base_seconds, our_seconds = alternating([lambda m=model: tutorial_grad_cam(m, tutorial, m.block3),
                                                 lambda m=ours_model: cam_images(m, images, "block3")], args.repeats)
        base, ours = args.baseline_images / base_seconds, args.images / our_seconds
        print(f"{name:6s} {base:15.0f} {ours:13.0f} {ours / base:5.1f}x", flush=True)


if __name__ == "__main__":
    main()
