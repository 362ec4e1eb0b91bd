"""Data checks for `data/cifar10/`, run after download and by `seecam check-data` in CI.

Both build the report here, so the same data gives the same bytes in
`reports/data_checks.json` (a CI check must not make DVC see a changed output).

Errors (the data is wrong or unreadable; exit 1): unreadable or short files,
wrong shape or dtype, labels out of range, image/label count mismatch,
checksums that differ from meta, and for `source: cifar10` any count other
than the official ones. Warnings (worth knowing, not fatal): class
imbalance, exact-duplicate images within a split, and test images that also
appear in train (leakage), each with counts.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from seecam.data.store import SPLITS, Dataset, array_sha256, load_dataset
from seecam.errors import SeecamError
from seecam.params import CIFAR10_TEST_SIZE, CIFAR10_TRAIN_SIZE, IMAGE_SIDE

OFFICIAL_COUNTS = {"train": CIFAR10_TRAIN_SIZE, "test": CIFAR10_TEST_SIZE}
IMAGE_SHAPE = (IMAGE_SIDE, IMAGE_SIDE, 3)
BALANCE_WARNING = 0.9
NOT_CIFAR10 = "data.url is not the CIFAR-10 binary archive (or it was altered)"


def check_directory(directory: str | Path) -> dict[str, Any]:
    """Check a data directory; unreadable files are reported as errors, not raised."""
    try:
        dataset = load_dataset(directory, verify=False)  # the checksum check below reports every file
    except SeecamError as exc:
        return _report([str(exc)], [], {}, 0)
    return check_dataset(dataset)


def check_dataset(dataset: Dataset) -> dict[str, Any]:
    """Check a loaded data set against its meta and for leakage."""
    errors: list[str] = []
    warnings: list[str] = []
    n_classes = len(dataset.classes)
    splits = {}
    digests = {}
    for name in SPLITS:
        split = dataset.split(name)
        summary, split_errors, split_warnings = _check_split(name, split.images, split.labels, n_classes)
        expected = dataset.meta.get("counts", {}).get(name)
        if expected is not None and expected != len(split.labels):
            split_errors.append(f"{name}: {len(split.labels)} labels, meta says {expected}")
        if split.boxes is not None and not _boxes_valid(split.boxes, len(split.labels)):
            split_errors.append(f"{name}: object boxes missing or outside the {IMAGE_SIDE}x{IMAGE_SIDE} image")
        errors += split_errors
        warnings += split_warnings
        splits[name] = summary
        if dataset.meta.get("source", {}).get("kind") == "cifar10":
            errors += official_count_errors(name, summary["per_class"])
        if not split_errors:
            digests[name] = _image_digests(split.images)
            dupes = len(digests[name]) - len(set(digests[name]))
            summary["duplicates"] = dupes
            if dupes:
                warnings.append(f"{name}: {dupes} exact-duplicate images within the split")
    cross = -1
    if len(digests) == 2:
        train_set = set(digests["train"])
        cross = sum(d in train_set for d in digests["test"])
        if cross:
            warnings.append(f"leakage: {cross} test images also appear in train")
    errors += _checksum_errors(dataset)
    report = _report(errors, warnings, splits, cross)
    report["sha256"] = dataset.meta.get("sha256", {}).get("all")
    return report


def official_count_errors(name: str, per_class: dict[str, int]) -> list[str]:
    """CIFAR-10's counts are its definition (50000 / 10000, 5000 / 1000 per class): any other is not CIFAR-10."""
    expected = OFFICIAL_COUNTS[name]
    each = expected // len(per_class)
    count = sum(per_class.values())
    if count != expected:
        return [f"{name}: {count} images, CIFAR-10 has {expected} ({each} per class); {NOT_CIFAR10}"]
    off = {c: n for c, n in per_class.items() if n != each}
    if not off:
        return []
    return [f"{name}: classes {', '.join(off)} have {', '.join(map(str, off.values()))} images, "
            f"CIFAR-10 has {each} each; {NOT_CIFAR10}"]


def _check_split(
    name: str, images: np.ndarray, labels: np.ndarray, n_classes: int
) -> tuple[dict[str, Any], list[str], list[str]]:
    errors, warnings = [], []
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        errors.append(f"{name}: images have shape {images.shape}, expected (N, {IMAGE_SIDE}, {IMAGE_SIDE}, 3)")
    if images.dtype != np.uint8:
        errors.append(f"{name}: images are {images.dtype}, expected uint8")
    if labels.ndim != 1 or len(labels) != len(images):
        errors.append(f"{name}: {labels.shape} labels for {len(images)} images")
    if not np.issubdtype(labels.dtype, np.integer):
        errors.append(f"{name}: labels are {labels.dtype}, expected integers")
    low, high = (int(labels.min()), int(labels.max())) if labels.size else (0, -1)
    if labels.size and (low < 0 or high >= n_classes):
        bad = int(((labels < 0) | (labels >= n_classes)).sum())
        errors.append(f"{name}: {bad} labels outside 0..{n_classes - 1} (min {low}, max {high})")
    counts = Counter(int(x) for x in labels.tolist())
    per_class = {str(c): counts.get(c, 0) for c in range(n_classes)}
    balance = min(per_class.values()) / max(max(per_class.values()), 1)
    if balance < BALANCE_WARNING:
        warnings.append(f"{name}: class imbalance, smallest/largest class = {balance:.2f}")
    summary = {
        "count": int(len(labels)), "per_class": per_class, "balance": round(balance, 4),
        "shape": list(images.shape), "dtype": str(images.dtype), "label_min": low, "label_max": high,
    }
    return summary, errors, warnings


def _boxes_valid(boxes: np.ndarray, n: int) -> bool:
    if boxes.shape != (n, 4):
        return False
    x0, y0, x1, y1 = boxes.T
    return bool(((x0 >= 0) & (x0 < x1) & (x1 <= IMAGE_SIDE) & (y0 >= 0) & (y0 < y1) & (y1 <= IMAGE_SIDE)).all())


def _image_digests(images: np.ndarray) -> list[bytes]:
    flat = images.reshape(len(images), -1)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]


def _checksum_errors(dataset: Dataset) -> list[str]:
    recorded = dataset.meta.get("sha256", {})
    errors = []
    for split in SPLITS:
        for kind, array in dataset.split(split).arrays().items():
            key = f"{split}_{kind}.npy"
            if key not in recorded:
                errors.append(f"{key}: no checksum in meta.json")
            elif array_sha256(array) != recorded[key]:
                errors.append(f"{key}: sha256 differs from meta.json (file changed after download)")
    return errors


def _report(errors: list[str], warnings: list[str], splits: dict[str, Any], cross: int) -> dict[str, Any]:
    return {
        "ok": not errors,
        "error_count": len(errors),
        "warning_count": len(warnings),
        "errors": errors,
        "warnings": warnings,
        "splits": splits,
        "cross_split_duplicates": cross,
    }


def summary_text(report: dict[str, Any]) -> str:
    """A few readable lines for the terminal."""
    lines = []
    for name, split in report["splits"].items():
        lines.append(
            f"{name:5s} {split['count']:6d} images {tuple(split['shape'][1:])} {split['dtype']}, "
            f"labels {split['label_min']}..{split['label_max']}, balance {split['balance']:.2f}, "
            f"{split.get('duplicates', '?')} duplicates"
        )
    if report["cross_split_duplicates"] >= 0:
        lines.append(f"test images also in train: {report['cross_split_duplicates']}")
    lines += [f"warning: {w}" for w in report["warnings"]]
    lines += [f"error: {e}" for e in report["errors"]]
    lines.append("data checks: " + ("ok" if report["ok"] else f"FAILED ({report['error_count']} errors)"))
    return "\n".join(lines)

