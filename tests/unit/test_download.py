import json
import shutil
import subprocess
import sys

import pytest

from cifar_archives import build_archive, build_full_archive
from seecam.data.store import load_dataset
from seecam.download import run_download
from seecam.errors import SeecamError
from seecam.params import parse_params


def data_params(**data):
    return parse_params({"data": {"val_size": 10, **data}}).data


def test_synthetic_download_writes_checked_data(tmp_path):
    out, report = tmp_path / "cifar10", tmp_path / "checks.json"
    run_download(data_params(source="synthetic", synthetic={"train_size": 100, "test_size": 30}), out, report)
    dataset = load_dataset(out)
    assert dataset.meta["source"] == {"kind": "synthetic", "train_size": 100, "test_size": 30, "seed": 0}
    assert dataset.train.boxes.shape == (100, 4) and report.is_file()


@pytest.fixture(scope="module")
def full_archive(tmp_path_factory):
    return build_full_archive(tmp_path_factory.mktemp("full") / "cifar-10-binary.tar.gz")


def test_archive_download_and_failed_reruns_keep_the_good_data_and_its_report(http_server, full_archive, tmp_path,
                                                                              capsys):
    shutil.copy(full_archive["path"], http_server.root / "full.tar.gz")
    small = build_archive(http_server.root / "small.tar.gz")
    out, report, raw = tmp_path / "cifar10", tmp_path / "checks.json", tmp_path / "raw"
    result = run_download(data_params(url=f"{http_server.url}/full.tar.gz", md5=full_archive["md5"]), out, report, raw)
    assert result["ok"] and result["splits"]["test"]["per_class"] == {str(c): 1000 for c in range(10)}
    before = {p.name: p.read_bytes() for p in [*out.iterdir(), report]}
    capsys.readouterr()

    with pytest.raises(SeecamError, match="data checks failed: train: 100 images, CIFAR-10 has 50000") as info:
        run_download(data_params(url=f"{http_server.url}/small.tar.gz", md5=small["md5"]), out, report, raw)
    assert info.value.exit_code == 1
    assert "error: test: 20 images, CIFAR-10 has 10000" in capsys.readouterr().out  # the failing report, shown
    assert {p.name: p.read_bytes() for p in [*out.iterdir(), report]} == before  # the report still describes out

    with pytest.raises(SeecamError, match=f"expected {'1' * 32}, got {full_archive['md5']}"):
        run_download(data_params(url=f"{http_server.url}/full.tar.gz", md5="1" * 32), out, report, raw)
    assert {p.name: p.read_bytes() for p in [*out.iterdir(), report]} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checks.json", "cifar10", "raw", "www"]
    assert sorted(p.name for p in raw.iterdir()) == ["full.tar.gz", "small.tar.gz"]


def test_check_data_command_writes_the_report_the_stage_wrote(tmp_path):
    """CI runs `seecam check-data` after the stage: the same data must give the same bytes, or DVC sees a change."""
    out, report = tmp_path / "cifar10", tmp_path / "checks.json"
    run_download(data_params(source="synthetic", synthetic={"train_size": 100, "test_size": 30}), out, report)
    written = report.read_bytes()
    result = subprocess.run([sys.executable, "-m", "seecam.cli", "check-data", str(out), "--report", str(report)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert report.read_bytes() == written
    assert json.loads(written)["sha256"] == load_dataset(out).sha256
