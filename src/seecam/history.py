"""The training history: reports/train/<name>/history.csv, one row per epoch.

train writes it; evaluate (training time) and the report (curves) read it;
dvc.yaml's plots draw both models' files in one chart. The columns are the
per-epoch keys both MLflow runs log, so the CSV and the runs line up.
"""

from __future__ import annotations

import csv
from pathlib import Path

from seecam import paths
from seecam.atomic import write_csv

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_seconds")


def history_file(name: str) -> Path:
    return paths.train_dir(name) / "history.csv"


def write_history(name: str, rows: list[dict[str, float]]) -> None:
    """Write model `name`'s per-epoch rows atomically."""
    write_csv(history_file(name), rows, HISTORY_COLUMNS)


def read_history(name: str) -> list[dict[str, float]]:
    """The train stage's per-epoch rows (reports/train/<name>/history.csv); empty if it has not run."""
    path = history_file(name)
    if not path.is_file():
        return []
    with path.open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
