"""The tutorial's augmentations as batched tensor ops with per-image random parameters.

    RandomCrop(32, padding=4) -> RandomHorizontalFlip -> ColorJitter(0.2, 0.2, 0.2, 0.1)
    -> RandomRotation(15) -> Normalize(CIFAR-10 mean, std)

Images stay on the training device as uint8 NCHW; crop and flip are two
gathers on uint8, the rest runs in float32 in [0, 1], NCHW-contiguous. Each op follows
torchvision's definition for the same parameters (tests compare against
torchvision.transforms.functional image by image):

    brightness  x' = clamp(f x)
    contrast    x' = clamp(f x + (1 - f) mean(gray(x)))      gray = .2989 R + .587 G + .114 B
    saturation  x' = clamp(f x + (1 - f) gray(x))
    hue         rotate H in HSV by h (fraction of a turn)
    rotation    nearest-neighbour, fill 0, about the image centre

Like ColorJitter, the four colour ops run in a random order drawn per image.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)

from seecam.normalize import DEFAULT_NORMALIZATION, Normalizer
from seecam.params import AugmentParams

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)
COLOR_OPS = ("brightness", "contrast", "saturation", "hue")


@dataclass
class Draw:
    """Random parameters for one batch, one row per image."""

    offsets: torch.Tensor  # (B, 2) int64: crop top, left in the padded image
    flip: torch.Tensor  # (B,) bool
    factors: torch.Tensor  # (B, 4) float32: brightness, contrast, saturation factors; hue shift
    order: torch.Tensor  # (B, 4) int64: a permutation of COLOR_OPS per image
    angles: torch.Tensor  # (B,) float32 degrees, counter-clockwise


def sample(batch: int, aug: AugmentParams, generator: torch.Generator, device: torch.device) -> Draw:
    """Draw per-image parameters with torchvision's ranges."""

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(batch, generator=generator, device=device)

    offsets = torch.randint(0, 2 * aug.crop_padding + 1, (batch, 2), generator=generator, device=device)
    flip = torch.rand(batch, generator=generator, device=device) < (0.5 if aug.flip else 0.0)
    factors = torch.stack([
        uniform(max(0.0, 1 - aug.brightness), 1 + aug.brightness),
        uniform(max(0.0, 1 - aug.contrast), 1 + aug.contrast),
        uniform(max(0.0, 1 - aug.saturation), 1 + aug.saturation),
        uniform(-aug.hue, aug.hue),
    ], dim=1)
    order = torch.rand(batch, 4, generator=generator, device=device).argsort(dim=1)
    angles = uniform(-aug.rotation_degrees, aug.rotation_degrees)
    return Draw(offsets, flip, factors, order, angles)


def crop_flip(images: torch.Tensor, offsets: torch.Tensor, flip: torch.Tensor, padding: int) -> torch.Tensor:
    """Zero-pad, crop back to the input size at per-image offsets, mirror where `flip`: a gather of rows, then
    of columns, on uint8.

    The result is NCHW-contiguous like the input, so the colour ops after it loop along image rows; a gather
    in NHWC handed them 3 colours as the innermost dimension, and they ran a third slower.
    """
    n, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    rows = offsets[:, :1] + torch.arange(h, device=images.device)
    cols = torch.arange(w, device=images.device).expand(n, w)
    cols = offsets[:, 1:] + torch.where(flip[:, None], w - 1 - cols, cols)
    cropped = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * padding))
    return cropped.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W), ITU-R 601-2 luma as torchvision."""
    r, g, b = images.unbind(dim=1)
    return (GRAY_WEIGHTS[0] * r).add_(g, alpha=GRAY_WEIGHTS[1]).add_(b, alpha=GRAY_WEIGHTS[2]).unsqueeze(1)


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = factor.view(-1, 1, 1, 1)
    return (f * images).add_((1.0 - f) * other).clamp_(0.0, 1.0)


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor[:, None, None, None] * images).clamp(0.0, 1.0)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(images, grayscale(images).mean(dim=(1, 2, 3), keepdim=True), factor)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(images, grayscale(images), factor)


def adjust_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate hue by `shift` turns: torchvision's RGB->HSV, then the closed-form HSV->RGB.

    HSV->RGB per channel n (R=5, G=3, B=1): v - v s clamp(min(k, 4 - k), 0, 1), k = (n + 6h) mod 6,
    the same values as torchvision's six-sector table with far fewer passes over the batch.
    """
    r, g, b = images.unbind(dim=1)
    maxc = torch.maximum(torch.maximum(r, g), b)
    span = maxc - torch.minimum(torch.minimum(r, g), b)
    safe_span = torch.where(span == 0, 1.0, span)
    sector = torch.where(maxc == r, (g - b).div_(safe_span),
                         torch.where(maxc == g, (b - r).div_(safe_span).add_(2.0), (r - g).div_(safe_span).add_(4.0)))
    h = sector.div_(6.0).add_(shift.view(-1, 1, 1))
    h = h.sub_(h.floor())  # mod 1 (torch.remainder is ~10x slower on CPU)
    k = _hsv_offsets(images.device) + 6.0 * h[:, None]  # in [1, 11)
    k = torch.where(k >= 6.0, k - 6.0, k)  # mod 6, exact in this range
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return maxc[:, None] - span[:, None] * ramp  # v - v s ramp, with v s = max - min


@functools.cache
def _hsv_offsets(device: torch.device) -> torch.Tensor:
    """HSV->RGB channel offsets, made once per device (a host-to-device copy per call would sync CUDA)."""
    return torch.tensor([5.0, 3.0, 1.0], device=device).view(1, 3, 1, 1)


def color_jitter(
    images: torch.Tensor, factors: torch.Tensor, order: torch.Tensor, enabled: torch.Tensor, sync_free: bool = False
) -> torch.Tensor:
    """Apply the four colour ops, each image in its own order (`order[i]`, a permutation of 0..3).

    `enabled` is a bool tensor of the four ops on the images' device.
    Brightness, contrast and saturation are one blend x' = clamp(f x + (1 - f) ref) with a per-image
    reference (0, mean grey, grey), so each position is a single pass over the batch; images whose op
    at this position is hue (or inactive) get f = 1, which leaves them bit-identical.
    Hue runs on the images whose op it is: picked by index on a CPU (a quarter of the work), or with
    `sync_free` computed for all and selected, since finding them (`nonzero`) makes the host wait for CUDA.
    Every op is per image, so both give bit-identical results.
    """
    for position in range(4):
        op = order[:, position]
        f = torch.where((op < 3) & enabled[op], factors.gather(1, op.clamp(max=2)[:, None]).squeeze(1), 1.0)
        contrast, saturation = ((op == k).view(-1, 1, 1, 1).float() for k in (1, 2))
        gray = grayscale(images)
        reference = saturation * gray + contrast * gray.mean(dim=(1, 2, 3), keepdim=True)  # 0 for brightness
        images = _blend(images, reference, f)
        hue = (op == 3) & enabled[3]
        if sync_free:
            images = torch.where(hue.view(-1, 1, 1, 1), adjust_hue(images, factors[:, 3]), images)
        elif (chosen := hue.nonzero().squeeze(1)).numel():
            images[chosen] = adjust_hue(images[chosen], factors[chosen, 3])
    return images


def rotation_grid(angles: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Sampling grid of torchvision's tensor `rotate` (centre, nearest, no expand), per image."""
    rad = torch.deg2rad(-angles.double())  # the inverse map, built in float64 like torchvision's python floats
    cos, sin = (t.float().view(-1, 1, 1) for t in (torch.cos(rad), torch.sin(rad)))
    xs = torch.linspace(-w * 0.5 + 0.5, w * 0.5 - 0.5, w, device=angles.device).view(1, 1, w)
    ys = torch.linspace(-h * 0.5 + 0.5, h * 0.5 - 0.5, h, device=angles.device).view(1, h, 1)
    return torch.stack([(cos * xs + sin * ys) / (0.5 * w), (cos * ys - sin * xs) / (0.5 * h)], dim=-1)


def rotate(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate each image by its angle (degrees, counter-clockwise); uncovered pixels become 0."""
    grid = rotation_grid(angles, images.shape[2], images.shape[3]).to(images.dtype)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


class Augmenter:
    """Callable: uint8 NCHW batch -> augmented, normalised float batch (same device)."""

    def __init__(self, aug: AugmentParams, device: torch.device, normalization: str = DEFAULT_NORMALIZATION) -> None:
        self.aug = aug
        self.device = device
        self.normalize = Normalizer(device, normalization)
        self.active = (aug.brightness > 0, aug.contrast > 0, aug.saturation > 0, aug.hue > 0)
        self.enabled = torch.tensor(self.active, device=device)
        self.sync_free = device.type == "cuda"  # no host sync inside an epoch (color_jitter says why)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        draw = sample(len(images), self.aug, generator, self.device)
        return self.apply(images, draw)

    def apply(self, images: torch.Tensor, draw: Draw) -> torch.Tensor:
        """Apply a given draw (tests use this to fix the parameters)."""
        x = crop_flip(images, draw.offsets, draw.flip, self.aug.crop_padding).float() / 255.0
        if any(self.active):
            x = color_jitter(x, draw.factors, draw.order, self.enabled, self.sync_free)
        if self.aug.rotation_degrees > 0:
            x = rotate(x, draw.angles)
        return self.normalize(x)

