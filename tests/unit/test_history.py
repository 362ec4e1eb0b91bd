import csv

from seecam import paths
from seecam.history import HISTORY_COLUMNS, EpochRow, history_file, read_history, write_history, write_iterations


def rows(epochs: int = 2) -> list[EpochRow]:
    return [EpochRow(epoch=e, train_loss=1 / e, train_acc=0.5, val_loss=0.25, val_acc=0.75, lr=1e-3,
                     epoch_seconds=2.5) for e in range(1, epochs + 1)]


def test_rows_round_trip_through_the_csv_dvc_plots_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_history("cnn", rows())
    with history_file("cnn").open() as f:
        assert tuple(next(csv.reader(f))) == HISTORY_COLUMNS
    assert read_history("cnn") == rows()


def test_the_csv_is_written_as_train_always_wrote_it(tmp_path, monkeypatch):
    """dvc.yaml's plots and `dvc plots diff` read these bytes: the columns are the MLflow metric keys, in order."""
    monkeypatch.chdir(tmp_path)
    write_history("cnn", rows())
    assert history_file("cnn").read_text() == ("epoch,train_loss,train_acc,val_loss,val_acc,lr,epoch_seconds\n"
                                               "1,1.0,0.5,0.25,0.75,0.001,2.5\n"
                                               "2,0.5,0.5,0.25,0.75,0.001,2.5\n")
    write_iterations("cnn", [{"step": 1, "epoch": 1, "loss": 2.25}, {"step": 2, "epoch": 1, "loss": 2.0}])
    assert (paths.train_dir("cnn") / "iterations.csv").read_text() == "step,epoch,loss\n1,1,2.25\n2,1,2.0\n"


def test_an_epochs_mlflow_metrics_are_its_row_but_the_epoch():
    assert rows(1)[0].metrics() == {"train_loss": 1.0, "train_acc": 0.5, "val_loss": 0.25, "val_acc": 0.75,
                                    "lr": 1e-3, "epoch_seconds": 2.5}


def test_no_history_before_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert read_history("se") == []
