"""A deterministic, learnable CIFAR-format data set for tests, CI and offline demos.

Ten classes of shapes and textures, each drawn at a random position and size
on a random two-colour gradient background with pixel noise. The object's
box is known per image, so explanation tests can check that Grad-CAM points
at the object. Everything is vectorised numpy: 6,000 images take well under
a second.
"""

from __future__ import annotations

import numpy as np

from seecam.data.store import Dataset, Split
from seecam.params import IMAGE_SIDE

SYNTHETIC_CLASSES = (
    "disc", "square", "triangle", "plus", "ring", "diamond", "h_stripes", "v_stripes", "checker", "cross",
)


def _shape_masks(u: np.ndarray, v: np.ndarray) -> list[np.ndarray]:
    """One boolean mask per class, in box-local coordinates u, v in [-1, 1]."""
    inside = (np.abs(u) <= 1) & (np.abs(v) <= 1)
    radius = np.sqrt(u**2 + v**2)
    return [
        radius <= 1,
        (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85),
        (v <= 0.9) & (np.abs(u) <= (v + 1) / 2) & (v >= -1),
        inside & ((np.abs(u) <= 0.3) | (np.abs(v) <= 0.3)),
        (radius <= 1) & (radius >= 0.55),
        np.abs(u) + np.abs(v) <= 1,
        inside & (np.floor((v + 1) * 2.5) % 2 == 0),
        inside & (np.floor((u + 1) * 2.5) % 2 == 0),
        inside & ((np.floor((u + 1) * 2) + np.floor((v + 1) * 2)) % 2 == 0),
        inside & ((np.abs(u - v) <= 0.35) | (np.abs(u + v) <= 0.35)),
    ]


def make_split(n: int, rng: np.random.Generator) -> Split:
    """`n` images with balanced labels (shuffled) and each object's bounding box."""
    labels = rng.permutation(np.arange(n) % len(SYNTHETIC_CLASSES)).astype(np.int64)
    yy, xx = np.mgrid[0:IMAGE_SIDE, 0:IMAGE_SIDE].astype(np.float32)
    centre = (IMAGE_SIDE - 1) / 2

    # Background: a gradient between two random colours in a random direction.
    angle = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    ramp = (np.cos(angle)[:, None, None] * (xx - centre) + np.sin(angle)[:, None, None] * (yy - centre)) / 44 + 0.5
    c0, c1 = rng.uniform(0, 255, (2, n, 1, 1, 3)).astype(np.float32)
    image = c0 + (c1 - c0) * ramp[..., None]

    # Object: half-size 5..8 px, fully inside the image, colour far from the background's brightness.
    half = rng.integers(5, 9, n)
    cx = rng.integers(half, IMAGE_SIDE - half)
    cy = rng.integers(half, IMAGE_SIDE - half)
    u = (xx - cx[:, None, None] + 0.5) / half[:, None, None]
    v = (yy - cy[:, None, None] + 0.5) / half[:, None, None]
    masks = np.stack(_shape_masks(u, v))[labels, np.arange(n)]
    bright = image.mean(axis=(1, 2, 3)) < 128
    colour = np.where(bright[:, None], rng.uniform(170, 255, (n, 3)), rng.uniform(0, 85, (n, 3)))
    image = np.where(masks[..., None], colour[:, None, None, :].astype(np.float32), image)
    image += rng.normal(0, 8, image.shape).astype(np.float32)

    rows, cols = masks.any(axis=2), masks.any(axis=1)
    boxes = np.stack(
        [cols.argmax(1), rows.argmax(1), IMAGE_SIDE - cols[:, ::-1].argmax(1), IMAGE_SIDE - rows[:, ::-1].argmax(1)],
        axis=1,
    ).astype(np.int64)
    return Split(np.clip(image, 0, 255).round().astype(np.uint8), labels, boxes)


def make_synthetic(train_size: int, test_size: int, seed: int) -> Dataset:
    """The whole data set; the same seed gives the same bytes."""
    train = make_split(train_size, np.random.default_rng([seed, 0]))
    test = make_split(test_size, np.random.default_rng([seed, 1]))
    return Dataset(train, test, SYNTHETIC_CLASSES)
