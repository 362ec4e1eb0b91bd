"""Real `dvc repro download` runs in a throwaway copy of the repo."""

import json
import sys

from cifar_archives import build_archive, build_full_archive


def snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_synthetic_download_then_nothing_reruns(repo_copy):
    repo_copy.set_params(data__source="synthetic", data__val_size=50,
                         data__synthetic={"train_size": 300, "test_size": 100, "seed": 0})
    first = repo_copy.dvc("repro", "download")
    assert "Running stage 'download'" in first.stdout
    checks = json.loads((repo_copy.root / "reports/data_checks.json").read_text())
    assert checks["ok"] and checks["splits"]["train"]["count"] == 300
    second = repo_copy.dvc("repro", "download")
    assert "Running stage" not in second.stdout
    assert "up to date" in repo_copy.dvc("status", "download").stdout


def test_served_archive_passes_checks_and_failed_reruns_keep_data_and_report(repo_copy, http_server):
    built = build_full_archive(http_server.root / "cifar-10-binary.tar.gz")
    small = build_archive(http_server.root / "small.tar.gz", per_batch=30, test_size=25)
    url = f"{http_server.url}/cifar-10-binary.tar.gz"
    repo_copy.set_params(data__url=url, data__md5=built["md5"])
    repo_copy.dvc("repro", "download")
    report = repo_copy.root / "reports/data_checks.json"
    checks = json.loads(report.read_text())
    assert checks["ok"] and checks["splits"]["train"]["count"] == 50000 and checks["splits"]["test"]["count"] == 10000
    assert "Running stage" not in repo_copy.dvc("repro", "download").stdout

    data = repo_copy.root / "data/cifar10"
    before = snapshot(data) | {"report": report.read_bytes()}
    repo_copy.set_params(data__url=f"{http_server.url}/small.tar.gz", data__md5=small["md5"])
    failed = repo_copy.dvc("repro", "download", check=False)
    assert failed.returncode != 0
    assert "error: train: 150 images, CIFAR-10 has 50000" in failed.stdout
    assert snapshot(data) | {"report": report.read_bytes()} == before

    wrong = "f" * 32
    repo_copy.set_params(data__url=url, data__md5=wrong)
    (repo_copy.root / "data/raw/cifar-10-binary.tar.gz").unlink()
    failed = repo_copy.dvc("repro", "download", check=False)
    assert failed.returncode != 0
    assert f"expected {wrong}, got {built['md5']}" in failed.stderr
    assert snapshot(data) | {"report": report.read_bytes()} == before


def test_ci_data_check_leaves_the_pipeline_clean(repo_copy):
    repo_copy.set_params(data__source="synthetic", data__val_size=50,
                         data__synthetic={"train_size": 300, "test_size": 100, "seed": 0})
    repo_copy.dvc("repro", "download")
    repo_copy.run(sys.executable, "-m", "seecam.cli", "check-data", PYTHONPATH=str(repo_copy.root / "src"))
    assert "up to date" in repo_copy.dvc("status", "download").stdout
