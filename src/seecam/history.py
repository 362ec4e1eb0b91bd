"""The training history: reports/train/<name>/history.csv, one row per epoch (and iterations.csv, per step).

train writes it; evaluate (training time, and every model's history in one long table for dvc.yaml's plots)
and the report (curves) read it. The columns are the per-epoch keys every MLflow training run logs, so the CSV
and the runs line up.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from seecam import paths
from seecam.atomic import write_csv


@dataclass(frozen=True)
class EpochRow:
    """One epoch of a training: a row of history.csv, and the metrics its MLflow run logs at step `epoch`."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float  # the rate the epoch trained at (the scheduler steps after it)
    epoch_seconds: float

    def metrics(self) -> dict[str, float]:
        """Every value but the epoch, which is the MLflow step."""
        return {key: float(value) for key, value in asdict(self).items() if key != "epoch"}


HISTORY_COLUMNS = tuple(column.name for column in fields(EpochRow))
ITERATION_COLUMNS = ("step", "epoch", "loss")


def history_file(name: str) -> Path:
    return paths.train_dir(name) / "history.csv"


def write_history(name: str, rows: list[EpochRow]) -> None:
    """Write model `name`'s per-epoch rows atomically."""
    write_csv(history_file(name), [asdict(row) for row in rows], HISTORY_COLUMNS)


def write_iterations(name: str, rows: list[dict[str, float]]) -> None:
    """Write model `name`'s per-step losses atomically."""
    write_csv(paths.train_dir(name) / "iterations.csv", rows, ITERATION_COLUMNS)


def long_table(names: list[str], filename: str) -> tuple[tuple[str, ...], list[dict[str, str]]]:
    """Every model's reports/train/<name>/<filename> as one table (long format: a `model` column first, the values
    as train wrote them), and its columns: one file holds every model, however many, so dvc.yaml's plots draw
    them all from it with a colour per model (.dvc/plots/by_model.json)."""
    columns: tuple[str, ...] = ("model",)
    rows: list[dict[str, str]] = []
    for name in names:
        with (paths.train_dir(name) / filename).open() as f:
            reader = csv.DictReader(f)
            columns = ("model", *(reader.fieldnames or ()))
            rows += [{"model": name} | row for row in reader]
    return columns, rows


def read_history(name: str) -> list[EpochRow]:
    """The train stage's per-epoch rows (reports/train/<name>/history.csv); empty if it has not run."""
    path = history_file(name)
    if not path.is_file():
        return []
    with path.open() as f:
        return [EpochRow(**{k: float(v) for k, v in row.items()} | {"epoch": int(row["epoch"])})
                for row in csv.DictReader(f)]
