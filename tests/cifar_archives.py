"""Build small CIFAR-10-format binary archives for tests (the real one cannot be downloaded here)."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np

from seecam.data.cifar_binary import CLASSES_MEMBER, RECORD_BYTES, TEST_MEMBER, TRAIN_MEMBERS
from seecam.data.store import CIFAR10_CLASSES


def records(labels: np.ndarray, images: np.ndarray) -> bytes:
    """Encode NHWC uint8 images and labels in the CIFAR binary record layout."""
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    out = np.concatenate([labels.astype(np.uint8)[:, None], planes], axis=1)
    assert out.shape[1] == RECORD_BYTES
    return out.tobytes()


def random_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct random images with balanced labels."""
    rng = np.random.default_rng(seed)
    return np.arange(n) % 10, rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def build_archive(
    path: Path,
    per_batch: int = 20,
    test_size: int = 20,
    omit: tuple[str, ...] = (),
    truncate: str | None = None,
) -> dict:
    """Write a cifar-10-binary.tar.gz; return its md5 and the arrays that went in."""
    members: dict[str, bytes] = {}
    train_labels, train_images = [], []
    for i, name in enumerate(TRAIN_MEMBERS):
        labels, images = random_split(per_batch, seed=i)
        train_labels.append(labels)
        train_images.append(images)
        members[name] = records(labels, images)
    test_labels, test_images = random_split(test_size, seed=99)
    members[TEST_MEMBER] = records(test_labels, test_images)
    members[CLASSES_MEMBER] = ("\n".join(CIFAR10_CLASSES) + "\n\n").encode()
    if truncate:
        members[truncate] = members[truncate][:-100]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            if name in omit:
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return {
        "path": path,
        "md5": hashlib.md5(path.read_bytes()).hexdigest(),
        "train_labels": np.concatenate(train_labels),
        "train_images": np.concatenate(train_images),
        "test_labels": test_labels,
        "test_images": test_images,
    }


def build_full_archive(path: Path) -> dict:
    """A CIFAR-10-sized archive (50000 + 10000 images, 5000 / 1000 per class) that costs ~1 MB on disk.

    The official counts are the format's definition, so the download stage refuses anything smaller; each
    image here is black except its index in its first pixel, so all 60000 are distinct yet compress well.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for batch, name in enumerate((*TRAIN_MEMBERS, TEST_MEMBER)):
            index = np.arange(batch * 10_000, (batch + 1) * 10_000)
            images = np.zeros((10_000, 32, 32, 3), np.uint8)
            images[:, 0, 0] = np.stack([index >> 16, index >> 8, index], axis=1).astype(np.uint8)
            data = records(index % 10, images)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return {"path": path, "md5": hashlib.md5(path.read_bytes()).hexdigest()}


def build_bomb(path: Path, members: int, member_mib: int) -> dict:
    """A valid small archive behind `members` unwanted members of `member_mib` MiB of zeros each.

    gzip allows concatenated members, so each MiB of zeros is the same ~1 KB compressed block written again:
    a GiB of filler costs ~1 MB and milliseconds to build, as a real decompression bomb would.
    """
    zeros = gzip.compress(bytes(1 << 20), compresslevel=9)
    valid = build_archive(path.with_suffix(".valid.tar.gz"))
    with path.open("wb") as out:
        for i in range(members):
            info = tarfile.TarInfo(f"cifar-10-batches-bin/filler_{i}.bin")
            info.size = member_mib << 20
            out.write(gzip.compress(info.tobuf()))
            out.write(zeros * member_mib)
        out.write(valid["path"].read_bytes())  # ends with the tar's end-of-archive blocks
    return valid | {"path": path, "md5": hashlib.md5(path.read_bytes()).hexdigest()}
