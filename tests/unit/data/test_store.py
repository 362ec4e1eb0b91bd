import json
import os

import numpy as np
import pytest

from seecam.data.store import Dataset, Split, array_sha256, attach_meta, checksums, load_dataset, save_dataset
from seecam.data.synthetic import make_synthetic
from seecam.errors import SeecamError


def test_round_trip_keeps_arrays_boxes_classes_and_meta(tmp_path):
    dataset = attach_meta(make_synthetic(40, 20, seed=3), {"kind": "synthetic"})
    save_dataset(dataset, tmp_path / "cifar10")
    loaded = load_dataset(tmp_path / "cifar10")
    for split in ("train", "test"):
        for kind, array in dataset.split(split).arrays().items():
            np.testing.assert_array_equal(loaded.split(split).arrays()[kind], array)
    assert loaded.classes == dataset.classes and loaded.meta == json.loads(json.dumps(dataset.meta))
    assert loaded.sha256 == dataset.sha256 == dataset.meta["sha256"]["all"]


def test_meta_counts_and_a_checksum_per_array_file():
    images = np.zeros((4, 32, 32, 3), np.uint8)
    dataset = attach_meta(Dataset(Split(images, np.arange(4)), Split(images[:2], np.arange(2))), {"kind": "x"})
    assert dataset.meta["counts"] == {"train": 4, "test": 2} and dataset.meta["boxes"] is False
    assert set(dataset.meta["sha256"]) == {"train_images.npy", "train_labels.npy", "test_images.npy",
                                           "test_labels.npy", "all"}


def test_array_digest_covers_dtype_and_shape_not_just_bytes():
    array = np.arange(12, dtype=np.int32)
    assert array_sha256(array) == array_sha256(array.copy())
    assert array_sha256(array) != array_sha256(array.reshape(3, 4))
    assert array_sha256(array) != array_sha256(array.view(np.uint32))


def test_missing_data_set_names_the_stage_that_makes_it(tmp_path):
    with pytest.raises(SeecamError, match="meta.json missing.*dvc repro download"):
        load_dataset(tmp_path / "nothing")


def test_an_array_changed_after_download_is_refused_where_it_is_loaded(tmp_path):
    """Same size, one byte flipped, mtime put back: DVC's status trusts the mtime; loading checks the bytes."""
    save_dataset(attach_meta(make_synthetic(40, 20, seed=3), {"kind": "synthetic"}), tmp_path / "cifar10")
    images = tmp_path / "cifar10/train_images.npy"
    stat = images.stat()
    data = bytearray(images.read_bytes())
    data[-1] ^= 0xFF
    images.write_bytes(bytes(data))
    os.utime(images, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(SeecamError) as caught:
        load_dataset(tmp_path / "cifar10")
    assert str(caught.value) == (f"{images}: its bytes differ from the sha256 in meta.json (changed after the "
                                 "download); `seecam check-data` says more, `dvc repro -f download` restores it")
    assert load_dataset(tmp_path / "cifar10", verify=False).train.images.shape == (40, 32, 32, 3)


def test_provenance_is_the_digest_of_the_bytes_loaded_and_a_meta_json_that_disagrees_is_refused(tmp_path):
    dataset = attach_meta(make_synthetic(40, 20, seed=3), {"kind": "synthetic"})
    save_dataset(dataset, tmp_path / "cifar10")
    loaded = load_dataset(tmp_path / "cifar10")
    assert loaded.sha256 == checksums(loaded)["all"] == dataset.sha256
    meta_path = tmp_path / "cifar10/meta.json"
    meta = json.loads(meta_path.read_text())
    meta["sha256"]["all"] = "0" * 64  # a meta.json edited by hand
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(SeecamError, match="meta.json: its sha256 of all arrays is not theirs"):
        load_dataset(tmp_path / "cifar10")
