"""The on-disk data set every stage shares: `data/cifar10/`.

Layout: `{train,test}_images.npy` (uint8, N x 32 x 32 x 3, NHWC),
`{train,test}_labels.npy` (int64), for synthetic data `{train,test}_boxes.npy`
(int64 x0, y0, x1, y1 of the object, end-exclusive), and `meta.json` with the
class names, the source and the sha256 of every array. Plain .npy files load
without pickle and memory-map cheaply.

The stages that use the arrays load them verified against those sha256: DVC's
status trusts a file's mtime, so bytes changed in place pass it, and a run's
`data_sha256` must name the bytes it trained on. For the same reason the fix
they name is `dvc repro -f download`: plain `dvc repro download` skips a stage
whose outputs kept their size and mtime. Hashing the 180 MB of CIFAR-10
takes ~0.2 s (SHA-NI; measured on the 2-core build machine).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from seecam.atomic import atomic_dir, recover_dir
from seecam.errors import SeecamError
from seecam.paths import DATA_DIR

SPLITS = ("train", "test")
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


@dataclass
class Split:
    """Images and labels of one split, plus object boxes when the source knows them."""

    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"images": self.images, "labels": self.labels}
        if self.boxes is not None:
            out["boxes"] = self.boxes
        return out


@dataclass
class Dataset:
    """Both splits and their provenance."""

    train: Split
    test: Split
    classes: tuple[str, ...] = CIFAR10_CLASSES
    meta: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> Split:
        return {"train": self.train, "test": self.test}[name]

    @property
    def sha256(self) -> str:
        """One digest of all arrays, for provenance tags (recorded in meta)."""
        return self.meta["sha256"]["all"]


def array_sha256(array: np.ndarray) -> str:
    """Digest of the array's dtype, shape and bytes (independent of the .npy header)."""
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def checksums(dataset: Dataset) -> dict[str, str]:
    """sha256 per array file, plus `all` over them in a fixed order."""
    sums = {
        f"{split}_{kind}.npy": array_sha256(array)
        for split in SPLITS
        for kind, array in dataset.split(split).arrays().items()
    }
    sums["all"] = hashlib.sha256("".join(f"{k}={sums[k]};" for k in sorted(sums)).encode()).hexdigest()
    return sums


def attach_meta(dataset: Dataset, source: dict[str, Any]) -> Dataset:
    """Record class names, source, counts and checksums in `dataset.meta`."""
    dataset.meta = {
        "classes": list(dataset.classes),
        "source": source,
        "counts": {split: int(len(dataset.split(split).labels)) for split in SPLITS},
        "boxes": dataset.train.boxes is not None,
        "sha256": checksums(dataset),
    }
    return dataset


def save_dataset(dataset: Dataset, directory: str | Path) -> None:
    """Write arrays and meta atomically: `directory` is replaced whole or not at all."""
    with atomic_dir(directory) as tmp:
        write_arrays(dataset, tmp)
        (tmp / "meta.json").write_text(json.dumps(dataset.meta, indent=2) + "\n")


def write_arrays(dataset: Dataset, directory: Path) -> None:
    """Write each split's arrays as plain .npy files into an existing directory."""
    for split in SPLITS:
        for kind, array in dataset.split(split).arrays().items():
            with (directory / f"{split}_{kind}.npy").open("wb") as file:
                np.save(_PlainWrites(file), array, allow_pickle=False)


class _PlainWrites:
    """Hands numpy only `.write`: given a real file numpy writes with C's fwrite, whose short write on a full
    disk is "921600 requested and 204672 written", errno lost; Python's own write raises ENOSPC, named."""

    def __init__(self, file: BinaryIO) -> None:
        self.write = file.write


def load_dataset(directory: str | Path = DATA_DIR, verify: bool = True) -> Dataset:
    """Load `data/cifar10/`; a missing directory says which stage makes it.

    `verify`: refuse arrays whose sha256 is not meta.json's, naming the file (`seecam check-data` loads
    without it, to report every check rather than stop at the first).
    """
    directory = Path(directory)
    recover_dir(directory)
    meta_path = directory / "meta.json"
    if not meta_path.is_file():
        raise SeecamError(f"{directory}: no data set here (meta.json missing); run `dvc repro download`")
    try:
        meta = json.loads(meta_path.read_text())
        splits = {split: _load_split(directory, split, meta.get("boxes", False)) for split in SPLITS}
    except (OSError, ValueError) as exc:
        raise SeecamError(f"{directory}: unreadable data set ({exc}); `dvc repro -f download` restores it") from None
    dataset = Dataset(splits["train"], splits["test"], tuple(meta["classes"]), meta)
    if verify:
        _verify(dataset, directory)
    return dataset


def _verify(dataset: Dataset, directory: Path) -> None:
    """Every array's digest is meta.json's, and so is the digest of all (the provenance tags carry it)."""
    claimed = dataset.meta.get("sha256", {})
    actual = checksums(dataset)
    for name in sorted(actual.keys() - {"all"}):
        if claimed.get(name) != actual[name]:
            raise SeecamError(f"{directory / name}: its bytes differ from the sha256 in meta.json (changed after "
                              "the download); `seecam check-data` says more, `dvc repro -f download` restores it")
    if claimed.get("all") != actual["all"]:
        raise SeecamError(f"{directory / 'meta.json'}: its sha256 of all arrays is not theirs (edited after the "
                          "download); `dvc repro -f download` restores it")


def _load_split(directory: Path, split: str, has_boxes: bool) -> Split:
    def load(kind: str) -> np.ndarray:
        return np.load(directory / f"{split}_{kind}.npy", allow_pickle=False)

    return Split(load("images"), load("labels"), load("boxes") if has_boxes else None)
