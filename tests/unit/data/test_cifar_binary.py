import gzip
import io
import tarfile
import tracemalloc

import numpy as np
import pytest

from cifar_archives import build_archive, build_bomb, records
from seecam.data.cifar_binary import (
    BATCH_RECORDS,
    CLASSES_MEMBER,
    MAX_UNPACKED_BYTES,
    RECORD_BYTES,
    TEST_MEMBER,
    TRAIN_MEMBERS,
    parse_records,
    read_archive,
)
from seecam.errors import SeecamError


def test_record_layout_is_label_then_red_green_blue_planes():
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, 0, 1] = (10, 20, 30)  # row 0, column 1
    raw = records(np.array([7]), image)
    assert raw[0] == 7 and raw[1 + 1] == 10 and raw[1 + 1024 + 1] == 20 and raw[1 + 2048 + 1] == 30
    split = parse_records(raw, "x")
    assert split.labels.tolist() == [7] and split.images.dtype == np.uint8
    np.testing.assert_array_equal(split.images, image)


def test_archive_round_trip(tmp_path):
    built = build_archive(tmp_path / "cifar-10-binary.tar.gz", per_batch=12, test_size=10)
    dataset = read_archive(built["path"])
    np.testing.assert_array_equal(dataset.train.images, built["train_images"])
    np.testing.assert_array_equal(dataset.train.labels, built["train_labels"])
    np.testing.assert_array_equal(dataset.test.images, built["test_images"])
    assert dataset.train.images.shape == (60, 32, 32, 3) and dataset.classes[6] == "frog"


def test_truncated_member_is_reported(tmp_path):
    built = build_archive(tmp_path / "a.tar.gz", truncate=TEST_MEMBER)
    with pytest.raises(SeecamError, match=r"test_batch.bin is \d+ bytes, not a whole number of 3073-byte records"):
        read_archive(built["path"])


def test_truncated_gzip_is_reported(tmp_path):
    built = build_archive(tmp_path / "a.tar.gz")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(built["path"].read_bytes()[:-2000])
    with pytest.raises(SeecamError, match="not a readable tar.gz archive .* truncated or corrupt"):
        read_archive(cut)


def test_not_an_archive_is_reported(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(gzip.compress(b"<html>not found</html>"))
    with pytest.raises(SeecamError, match="not a readable tar.gz archive"):
        read_archive(junk)


def test_missing_member_names_it_and_the_right_archive(tmp_path):
    built = build_archive(tmp_path / "a.tar.gz", omit=(TEST_MEMBER,))
    with pytest.raises(SeecamError, match="archive lacks cifar-10-batches-bin/test_batch.bin; .* binary version"):
        read_archive(built["path"])


def test_oversized_member_is_refused_from_its_header_before_it_is_read(tmp_path):
    """A header claiming one record more than a CIFAR-10 batch: refused without reading 30 MB (sparse file)."""
    claimed = (BATCH_RECORDS + 1) * RECORD_BYTES
    info = tarfile.TarInfo(TRAIN_MEMBERS[0])
    info.size = claimed
    path = tmp_path / "huge.tar"
    with path.open("wb") as f:
        f.write(info.tobuf())
        f.truncate(f.tell() + claimed + 2 * tarfile.BLOCKSIZE)  # a hole: the payload costs no disk or memory
    tracemalloc.start()
    try:
        with pytest.raises(SeecamError, match=rf"data_batch_1.bin claims {claimed} bytes, more than a CIFAR-10 "
                                              rf"batch \({BATCH_RECORDS * RECORD_BYTES} bytes\)"):
            read_archive(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_an_archive_that_unpacks_beyond_cifar10_is_refused_at_the_first_member_past_it(tmp_path):
    """16 MiB members of zeros, 512 MiB in all, before the real ones: refused at the header of the first
    member that ends past what the CIFAR-10 archive unpacks to (six batches and a little), never unpacked."""
    bomb = build_bomb(tmp_path / "bomb.tar.gz", members=32, member_mib=16)
    assert bomb["path"].stat().st_size < 1 << 20
    first_past = next(i for i in range(32) if (i + 1) * ((16 << 20) + 512) > MAX_UNPACKED_BYTES)
    with pytest.raises(SeecamError, match=rf"archive member cifar-10-batches-bin/filler_{first_past}.bin ends "
                                          r"[\d,]+ bytes in, beyond the [\d,]+ bytes .* unpacks to"):
        read_archive(bomb["path"])


def _with_hostile_members(path, outside):
    """Append members that try to write outside the extraction root: `..`, absolute, symlink, hard link."""
    with tarfile.open(path, "a") as tar:
        for name in (f"../{outside.name}", str(outside), f"{TRAIN_MEMBERS[0]}/../../{outside.name}"):
            info = tarfile.TarInfo(name)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
        for kind, name in ((tarfile.SYMTYPE, CLASSES_MEMBER), (tarfile.LNKTYPE, "cifar-10-batches-bin/link")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, str(outside)
            tar.addfile(info)


def test_hostile_members_are_never_written_anywhere(tmp_path, monkeypatch):
    built = build_archive(tmp_path / "a.tar", per_batch=12, test_size=10)
    plain = tmp_path / "plain.tar"  # tarfile cannot append to a compressed archive
    with tarfile.open(built["path"]) as src, tarfile.open(plain, "w") as dst:
        for member in src:
            dst.addfile(member, src.extractfile(member))
    outside = tmp_path / "escaped.bin"
    _with_hostile_members(plain, outside)
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    before = sorted(tmp_path.rglob("*"))

    dataset = read_archive(plain)

    np.testing.assert_array_equal(dataset.train.images, built["train_images"])
    assert dataset.classes[0] == "airplane"  # the symlinked class-name member was not followed
    assert sorted(tmp_path.rglob("*")) == before and not outside.exists()
