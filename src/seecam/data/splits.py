"""Which train images train the model and which validate it (stratified, seeded).

The validation set is drawn from the whole train split first, so it stays the
same whatever `data.subset` is; the subset is then the first N remaining
images per class, in file order. The test split is never used here.
"""

from __future__ import annotations

import numpy as np


def class_quotas(labels: np.ndarray, total: int) -> dict[int, int]:
    """Split `total` over classes in proportion to their counts (largest remainder)."""
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * total / counts.sum()
    quotas = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quotas), kind="stable")[: total - quotas.sum()]:
        quotas[i] += 1
    return dict(zip(classes.tolist(), quotas.tolist(), strict=True))


def train_val_indices(labels: np.ndarray, val_size: int, subset: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training images and of the held-out validation images."""
    rng = np.random.default_rng(seed)
    val = []
    for cls, quota in class_quotas(labels, val_size).items():
        members = np.flatnonzero(labels == cls)
        val.append(rng.choice(members, quota, replace=False))
    val_idx = np.sort(np.concatenate(val)) if val else np.empty(0, np.int64)
    rest = np.setdiff1d(np.arange(len(labels)), val_idx)
    if subset:
        keep = [rest[labels[rest] == cls][:quota] for cls, quota in class_quotas(labels[rest], subset).items()]
        rest = np.sort(np.concatenate(keep))
    return rest, val_idx
