"""The download stage: get the images (CIFAR-10 archive or synthetic), check them, publish them.

Nothing is written to `data/cifar10/` or `reports/data_checks.json` until the
new data set is complete and has passed the checks, so a failed run keeps the
previous good data and the report that describes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seecam.atomic import write_json
from seecam.data.checks import check_dataset, summary_text
from seecam.data.cifar_binary import read_archive
from seecam.data.fetch import fetch_archive
from seecam.data.store import Dataset, attach_meta, save_dataset
from seecam.data.synthetic import make_synthetic
from seecam.errors import SeecamError
from seecam.params import DataParams
from seecam.paths import DATA_CHECKS, RAW_DIR


def build_dataset(data: DataParams, raw_dir: Path = RAW_DIR) -> Dataset:
    """Fetch and parse the archive, or generate the synthetic set, with provenance in meta."""
    if data.source == "synthetic":
        syn = data.synthetic
        dataset = make_synthetic(syn.train_size, syn.test_size, syn.seed)
        source: dict[str, Any] = {"kind": "synthetic", "train_size": syn.train_size,
                                  "test_size": syn.test_size, "seed": syn.seed}
    else:
        archive = fetch_archive(data.url, data.md5, raw_dir, data.timeout_seconds, data.retries,
                                deadline=data.deadline_seconds, min_bytes_per_second=data.min_bytes_per_second,
                                stall_seconds=data.stall_seconds)
        dataset = read_archive(archive)
        source = {"kind": "cifar10", "url": data.url, "md5": data.md5.lower()}
    return attach_meta(dataset, source)


def run_download(data: DataParams, out_dir: Path, report_path: Path = DATA_CHECKS, raw_dir: Path = RAW_DIR) -> dict:
    """Build, check and atomically publish the data set; raise (exit 1) if the checks fail.

    A failing report is printed, not written: `report_path` keeps describing the data still in `out_dir`.
    """
    dataset = build_dataset(data, raw_dir)
    report = check_dataset(dataset)
    print(summary_text(report))
    if not report["ok"]:
        raise SeecamError(f"data checks failed: {report['errors'][0]} ({report_path} still describes "
                          f"the previous data in {out_dir})", exit_code=1)
    save_dataset(dataset, out_dir)
    write_json(report_path, report)
    return report
