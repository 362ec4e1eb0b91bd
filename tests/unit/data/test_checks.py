import json
import subprocess
import sys

import numpy as np
import pytest

from seecam.data.checks import check_dataset, check_directory, official_count_errors
from seecam.data.store import attach_meta, load_dataset, save_dataset
from seecam.data.synthetic import make_synthetic


@pytest.fixture
def data_dir(tmp_path):
    dataset = attach_meta(make_synthetic(200, 50, seed=1), {"kind": "synthetic"})
    save_dataset(dataset, tmp_path / "cifar10")
    return tmp_path / "cifar10"


def test_clean_data_passes_with_counts_per_class(data_dir):
    report = check_directory(data_dir)
    assert report["ok"] and report["errors"] == [] and report["warnings"] == []
    assert report["splits"]["train"]["count"] == 200
    assert report["splits"]["train"]["per_class"] == {str(c): 20 for c in range(10)}
    assert report["splits"]["test"]["shape"] == [50, 32, 32, 3]
    assert report["cross_split_duplicates"] == 0


def test_out_of_range_label_is_an_error(data_dir):
    labels = np.load(data_dir / "test_labels.npy")
    labels[3] = 12
    np.save(data_dir / "test_labels.npy", labels)
    report = check_directory(data_dir)
    assert not report["ok"]
    assert "test: 1 labels outside 0..9 (min 0, max 12)" in report["errors"]


def test_silently_changed_label_breaks_the_checksum(data_dir):
    labels = np.load(data_dir / "train_labels.npy")
    labels[0] = (labels[0] + 1) % 10
    np.save(data_dir / "train_labels.npy", labels)
    report = check_directory(data_dir)
    assert report["errors"] == ["train_labels.npy: sha256 differs from meta.json (file changed after download)"]


def test_wrong_shape_is_an_error(data_dir):
    dataset = load_dataset(data_dir)
    dataset.test.images = dataset.test.images[:, :28]
    report = check_dataset(dataset)
    assert "test: images have shape (50, 28, 32, 3), expected (N, 32, 32, 3)" in report["errors"]


def test_duplicates_within_and_across_splits_are_warnings_with_counts(data_dir):
    dataset = load_dataset(data_dir)
    dataset.train.images[5] = dataset.train.images[4]
    dataset.test.images[:3] = dataset.train.images[10:13]
    dataset = attach_meta(dataset, dataset.meta["source"])
    report = check_dataset(dataset)
    assert report["ok"]
    assert report["splits"]["train"]["duplicates"] == 1
    assert report["cross_split_duplicates"] == 3
    assert "leakage: 3 test images also appear in train" in report["warnings"]


def test_short_file_is_an_error_not_a_crash(data_dir):
    path = data_dir / "train_images.npy"
    path.write_bytes(path.read_bytes()[:5000])
    report = check_directory(data_dir)
    assert not report["ok"] and "unreadable data set" in report["errors"][0]


def test_cli_writes_report_and_exits_1_on_error(data_dir, tmp_path):
    labels = np.load(data_dir / "test_labels.npy")
    labels[0] = -1
    np.save(data_dir / "test_labels.npy", labels)
    report = tmp_path / "checks.json"
    result = subprocess.run(
        [sys.executable, "-m", "seecam.cli", "check-data", str(data_dir), "--report", str(report)],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert "error: test: 1 labels outside 0..9" in result.stdout
    assert "data checks: FAILED" in result.stdout
    assert json.loads(report.read_text())["error_count"] == 2  # the label and its checksum


def test_cifar10_counts_are_the_format_definition_not_a_warning(data_dir):
    dataset = load_dataset(data_dir)
    dataset.meta["source"] = {"kind": "cifar10"}
    report = check_dataset(dataset)
    assert not report["ok"]
    assert report["errors"][0].startswith("train: 200 images, CIFAR-10 has 50000 (5000 per class)")
    assert report["errors"][1].startswith("test: 50 images, CIFAR-10 has 10000 (1000 per class)")


def test_cifar10_class_counts_must_be_exact():
    per_class = {str(c): 5000 for c in range(10)} | {"0": 5001, "3": 4999}
    assert official_count_errors("train", per_class) == [
        "train: classes 0, 3 have 5001, 4999 images, CIFAR-10 has 5000 each; data.url is not the CIFAR-10 "
        "binary archive (or it was altered)"
    ]
    assert official_count_errors("test", {str(c): 1000 for c in range(10)}) == []
