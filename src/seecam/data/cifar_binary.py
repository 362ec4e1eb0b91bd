"""Parse the CIFAR-10 *binary* archive with numpy: no pickle is ever loaded.

Each record is 3073 bytes: one label byte, then 1024 red, 1024 green and 1024
blue bytes of a 32x32 image in row-major order
(https://www.cs.toronto.edu/~kriz/cifar.html, "Binary version").
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from seecam.data.store import CIFAR10_CLASSES, Dataset, Split
from seecam.errors import SeecamError
from seecam.params import IMAGE_SIDE

RECORD_BYTES = 1 + 3 * IMAGE_SIDE * IMAGE_SIDE
BATCH_RECORDS = 10_000  # every official batch file, train or test, holds exactly this many
BATCH_BYTES = BATCH_RECORDS * RECORD_BYTES
# What the official archive unpacks to: six batches, plus room for its class names, readme and tar headers.
MAX_UNPACKED_BYTES = 6 * BATCH_BYTES + (1 << 20)
ROOT = "cifar-10-batches-bin"
TRAIN_MEMBERS = tuple(f"{ROOT}/data_batch_{i}.bin" for i in range(1, 6))
TEST_MEMBER = f"{ROOT}/test_batch.bin"
CLASSES_MEMBER = f"{ROOT}/batches.meta.txt"


def parse_records(raw: bytes, name: str) -> Split:
    """Turn one batch file's bytes into NHWC uint8 images and int64 labels."""
    if not raw or len(raw) % RECORD_BYTES:
        raise SeecamError(
            f"archive member {name} is {len(raw)} bytes, not a whole number of {RECORD_BYTES}-byte "
            "records: the archive is truncated or corrupt; delete it and download again"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    images = records[:, 1:].reshape(-1, 3, IMAGE_SIDE, IMAGE_SIDE).transpose(0, 2, 3, 1)
    return Split(np.ascontiguousarray(images), records[:, 0].astype(np.int64))


def read_archive(path: Path) -> Dataset:
    """Read train and test batches (and class names) from a cifar-10-binary.tar.gz."""
    members = _read_members(path, (*TRAIN_MEMBERS, TEST_MEMBER), optional=(CLASSES_MEMBER,))
    train_parts = [members[name] for name in TRAIN_MEMBERS]
    train = Split(
        np.concatenate([p.images for p in train_parts]), np.concatenate([p.labels for p in train_parts])
    )
    test = members[TEST_MEMBER]
    classes = CIFAR10_CLASSES
    if CLASSES_MEMBER in members:
        names = tuple(line.strip() for line in members[CLASSES_MEMBER].decode().splitlines() if line.strip())
        classes = names if len(names) == len(CIFAR10_CLASSES) else CIFAR10_CLASSES
    return Dataset(train, test, classes)


def _read_members(path: Path, required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, Any]:
    """Batch members parsed to Splits as they are read (one raw batch in memory at a time); others as bytes."""
    wanted = set(required) | set(optional)
    found: dict[str, Any] = {}
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                _refuse_beyond_cifar10(path, member)
                if member.name in wanted and member.isfile():
                    _refuse_oversized(member)
                    extracted = archive.extractfile(member)
                    assert extracted is not None
                    raw = extracted.read()
                    found[member.name] = raw if member.name == CLASSES_MEMBER else parse_records(raw, member.name)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise SeecamError(
            f"{path}: not a readable tar.gz archive ({type(exc).__name__}: {exc}); "
            "it is truncated or corrupt: delete it and download again"
        ) from None
    missing = [name for name in required if name not in found]
    if missing:
        raise SeecamError(
            f"{path}: archive lacks {', '.join(missing)}; data.url must point at the CIFAR-10 "
            "binary version (cifar-10-binary.tar.gz), not the python or matlab one"
        )
    return found


def _refuse_beyond_cifar10(path: Path, member: tarfile.TarInfo) -> None:
    """Refuse, from its header, a member that ends past what a CIFAR-10 archive unpacks to.

    Skipping an unwanted member of a compressed archive still decompresses it: without this a decompression
    bomb (megabytes that unpack to gigabytes) takes minutes before "archive lacks ..." or is even accepted.
    """
    end = member.offset_data + member.size
    if end > MAX_UNPACKED_BYTES:
        raise SeecamError(
            f"{path}: archive member {member.name} ends {end:,} bytes in, beyond the {MAX_UNPACKED_BYTES:,} "
            "bytes the CIFAR-10 binary archive unpacks to: data.url is not that archive"
        )


def _refuse_oversized(member: tarfile.TarInfo) -> None:
    """Judge the size the header claims, so a huge member is never read into memory."""
    if member.size > BATCH_BYTES:
        raise SeecamError(
            f"archive member {member.name} claims {member.size} bytes, more than a CIFAR-10 batch "
            f"({BATCH_BYTES} bytes): data.url is not the CIFAR-10 binary archive"
        )
