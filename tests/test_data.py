import json
import subprocess
import sys

import numpy as np
import pytest

from cifar_archives import build_archive
from seecam.data import download
from seecam.dataset import load_dataset
from seecam.errors import SeecamError
from seecam.params import parse_params


def data_params(**data):
    return parse_params({"data": {"val_size": 10, **data}}).data


def test_synthetic_download_writes_checked_data(tmp_path):
    out, report = tmp_path / "cifar10", tmp_path / "checks.json"
    download(data_params(source="synthetic", synthetic={"train_size": 100, "test_size": 30}), out, report)
    dataset = load_dataset(out)
    assert dataset.meta["source"] == {"kind": "synthetic", "train_size": 100, "test_size": 30, "seed": 0}
    assert dataset.train.boxes.shape == (100, 4) and report.is_file()


def test_archive_download_and_failed_rerun_keeps_the_good_data(http_server, tmp_path):
    built = build_archive(http_server.root / "cifar-10-binary.tar.gz")
    url = f"{http_server.url}/cifar-10-binary.tar.gz"
    out, report, raw = tmp_path / "cifar10", tmp_path / "checks.json", tmp_path / "raw"
    result = download(data_params(url=url, md5=built["md5"]), out, report, raw)
    assert result["ok"] and "train: 100 images, official CIFAR-10 has 50000" in result["warnings"]
    np.testing.assert_array_equal(load_dataset(out).test.images, built["test_images"])
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    (raw / "cifar-10-binary.tar.gz").unlink()
    with pytest.raises(SeecamError, match=f"expected {'1' * 32}, got {built['md5']}"):
        download(data_params(url=url, md5="1" * 32), out, report, raw)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checks.json", "cifar10", "raw", "www"]
    assert list(raw.iterdir()) == []


def test_check_data_command_writes_the_report_the_stage_wrote(tmp_path):
    """CI runs `seecam check-data` after the stage: the same data must give the same bytes, or DVC sees a change."""
    out, report = tmp_path / "cifar10", tmp_path / "checks.json"
    download(data_params(source="synthetic", synthetic={"train_size": 100, "test_size": 30}), out, report)
    written = report.read_bytes()
    result = subprocess.run([sys.executable, "-m", "seecam.cli", "check-data", str(out), "--report", str(report)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert report.read_bytes() == written
    assert json.loads(written)["sha256"] == load_dataset(out).sha256
