import csv

from seecam.history import HISTORY_COLUMNS, history_file, read_history, write_history


def test_rows_round_trip_through_the_csv_dvc_plots_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [{"epoch": e, "train_loss": 1 / e, "train_acc": 0.5, "val_loss": 0.25, "val_acc": 0.75, "lr": 1e-3,
             "epoch_seconds": 2.5} for e in (1, 2)]
    write_history("cnn", rows)
    with history_file("cnn").open() as f:
        assert tuple(next(csv.reader(f))) == HISTORY_COLUMNS
    assert read_history("cnn") == [{k: float(v) for k, v in row.items()} for row in rows]


def test_no_history_before_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert read_history("se") == []
