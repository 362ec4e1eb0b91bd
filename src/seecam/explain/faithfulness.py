"""Do the explanations point at what the model uses? Batched faithfulness and sanity metrics.

With p(x) the softmax probability of the explained class:

    deletion AUC   (RISE, Petsiuk et al., 2018)  area under p as the most salient pixels are replaced by
                   the data-set mean (0 after normalisation), in `steps` equal steps; lower = more faithful
    insertion AUC  the reverse: start from the mean image, insert the most salient pixels; higher = better
    average drop   (Grad-CAM++, Chattopadhay et al., 2018) mean_i max(0, Y_i - O_i) / Y_i * 100, where
                   Y = p(image) and O = p(image * map), the image masked by its own explanation
    increase in confidence   % of images with O_i > Y_i
    randomisation  (Adebayo et al., 2018) mean Spearman rank correlation (average ranks for ties) between
                   the maps of the trained model and of the same architecture with re-initialised weights;
                   near 0 means the explanation depends on what the model learned. Where either map is
                   constant (e.g. all zero) the correlation is undefined: such pairs are left out of the
                   mean and counted in `randomization_undefined_pairs`; if none is defined, the mean is
                   not reported at all
    pointing game  (Zhang et al., 2016) % of images whose map peaks inside the object's box (synthetic
                   data), next to the chance level of a uniformly random point (mean box area / image area)
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from seecam.explain.cam import cam_images
from seecam.explain.fold import fold_batchnorm
from seecam.normalize import Normalizer


@torch.no_grad()
def _probabilities(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    return torch.softmax(model(inputs), dim=1)


def _target_probability(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch: int) -> torch.Tensor:
    probabilities = [_probabilities(model, chunk) for chunk in inputs.split(batch)]
    return torch.cat(probabilities).gather(1, targets[:, None])[:, 0]


def salience_ranks(maps: torch.Tensor) -> torch.Tensor:
    """Rank of each pixel within its image, 0 = most salient (B, H*W)."""
    order = maps.flatten(1).argsort(dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=maps.device).expand_as(order))
    return ranks


def deletion_insertion_auc(
    model: nn.Module, inputs: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor, full: torch.Tensor,
    steps: int, batch: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image deletion and insertion AUC (trapezoid over the fraction of pixels changed).

    Each curve has steps + 1 points, but four of them need no per-image pass: deletion's first point and
    insertion's last are the whole image, whose probability `full` the CAM pass already computed; deletion's
    last and insertion's first are the all-mean image (0 after normalisation), one forward for every image.
    The 2 (steps - 1) interior points of a chunk of images run as one forward pass of at most `batch` inputs,
    so memory stays bounded and there is no Python loop per step.
    """
    model.eval()
    count, pixels = len(maps), maps[0].numel()
    ranks = salience_ranks(maps).view(count, 1, 1, *maps.shape[1:])
    changed_pixels = torch.tensor([round(step * pixels / steps) for step in range(1, steps)], device=inputs.device)
    blank = _probabilities(model, torch.zeros_like(inputs[:1]))[0, targets]
    interior = torch.empty(count, 2, steps - 1, device=inputs.device)
    per_chunk = max(1, batch // max(1, 2 * (steps - 1)))
    for start in range(0, count if steps > 1 else 0, per_chunk):
        chunk = slice(start, start + per_chunk)
        changed = (ranks[chunk] < changed_pixels.view(1, -1, 1, 1, 1)).to(inputs.dtype)  # (c, steps-1, 1, H, W)
        image = inputs[chunk, None]
        variants = torch.stack([image * (1 - changed), image * changed], dim=1)  # (c, 2, steps-1, 3, H, W)
        flat = variants.flatten(0, 2).contiguous(memory_format=torch.channels_last)
        probabilities = _probabilities(model, flat).view(*variants.shape[:3], -1)
        interior[chunk] = probabilities.gather(3, targets[chunk, None, None, None].expand(-1, 2, steps - 1, 1))[..., 0]
    deletion = torch.cat([full[:, None], interior[:, 0], blank[:, None]], dim=1)
    insertion = torch.cat([blank[:, None], interior[:, 1], full[:, None]], dim=1)
    fractions = torch.linspace(0, 1, steps + 1, device=inputs.device)
    return torch.trapezoid(deletion, fractions, dim=1), torch.trapezoid(insertion, fractions, dim=1)


def average_drop_and_increase(
    model: nn.Module, images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor, full: torch.Tensor, batch: int
) -> tuple[float, float]:
    """Average drop (%) and increase in confidence (%) when the image is masked by its map.

    `full` is Y, the target probability on the whole image (the CAM pass already computed it).
    """
    normalize = Normalizer.for_model(model, images.device)
    masked = _target_probability(model, normalize(images.float() / 255 * maps[:, None]), targets, batch)
    drop = ((full - masked).clamp(min=0) / full.clamp(min=1e-12)).mean().item() * 100
    increase = (masked > full).float().mean().item() * 100
    return drop, increase


def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Row-wise ranks of (B, ...) values, ties sharing the mean of their positions (B, N).

    CAMs after their ReLU tie at zero over much of the image: ranking ties by pixel order would invent
    an ordering that is the same in both maps and bias the correlation upwards. A value's tied run spans
    positions [low, high) of the sorted row, so its average rank is (low + high - 1) / 2.
    """
    flat = x.flatten(1).contiguous()
    ordered = flat.sort(dim=1).values
    low = torch.searchsorted(ordered, flat, right=False)
    high = torch.searchsorted(ordered, flat, right=True)
    return (low + high - 1).to(torch.float64) / 2


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Spearman rank correlation of (B, ...) tensors: Pearson's r of their average ranks.

    A constant row has no ranking, so its correlation is undefined: NaN (not 0, not 1).
    """
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(dim=1, keepdim=True), rb - rb.mean(dim=1, keepdim=True)
    scale = ra.norm(dim=1) * rb.norm(dim=1)
    rho = (ra * rb).sum(dim=1) / torch.where(scale > 0, scale, 1.0)
    return torch.where(scale > 0, rho, torch.nan).float()


def mean_defined(values: torch.Tensor) -> tuple[float | None, int]:
    """The mean of the defined (non-NaN) values, None if there are none, and how many were left out."""
    defined = values[~values.isnan()]
    return (defined.mean().item() if len(defined) else None), len(values) - len(defined)


def randomized_copy(model: nn.Module, seed: int) -> nn.Module:
    """The same architecture with every layer re-initialised (cascading randomisation, all layers).

    The caller's random streams are left where they were: `torch.manual_seed` reseeds the CPU and every
    CUDA device, so all of them are forked and restored (a model on cuda:1 still reseeds cuda:0).
    """
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        torch.manual_seed(seed)
        for module in clone.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            if hasattr(module, "reset_running_stats"):
                module.reset_running_stats()
    return clone.eval()


def pointing_game(maps: torch.Tensor, boxes: np.ndarray) -> tuple[float, float]:
    """% of maps whose maximum lies in the box, and the % a uniformly random point would score."""
    height, width = maps.shape[1:]
    peak = maps.flatten(1).argmax(dim=1).cpu().numpy()
    y, x = peak // width, peak % width
    x0, y0, x1, y1 = boxes.T
    hits = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    chance = ((x1 - x0) * (y1 - y0) / (height * width)).mean()
    return float(hits.mean() * 100), float(chance * 100)


def faithfulness(
    model: nn.Module, images: torch.Tensor, layer: str, steps: int, batch: int,
    boxes: np.ndarray | None = None, seed: int = 0,
) -> dict[str, float]:
    """All faithfulness metrics of Grad-CAM for `model` on uint8 `images` (explaining its predictions)."""
    cams = cam_images(model, images, layer, "gradcam", batch_size=batch)
    inputs = Normalizer.for_model(model, images.device)(images)
    full = cams.probabilities.gather(1, cams.targets[:, None])[:, 0]
    folded = fold_batchnorm(model)  # only class scores are needed from here on
    deletion, insertion = deletion_insertion_auc(folded, inputs, cams.maps, cams.targets, full, steps, batch)
    drop, increase = average_drop_and_increase(folded, images, cams.maps, cams.targets, full, batch)
    random_cams = cam_images(randomized_copy(model, seed), images, layer, "gradcam", cams.targets, batch)
    rho, undefined = mean_defined(spearman(cams.maps, random_cams.maps))
    out = {
        "deletion_auc": deletion.mean().item(), "insertion_auc": insertion.mean().item(),
        "average_drop": drop, "increase_in_confidence": increase, "randomization_undefined_pairs": undefined,
    }
    if rho is not None:
        out["randomization_spearman"] = rho
    if boxes is not None:
        out["pointing_game"], out["pointing_game_random"] = pointing_game(cams.maps, boxes)
    return out
