"""What `seecam sweep --run` says while DVC's queue trains: a line per experiment started and finished, the epochs
done of all with the time left (a bar on a terminal, lines in a log), and where each experiment's log is.

The training runs are real runs in a real MLflow SQLite store, logged as the train and evaluate stages log them;
the queue's states are what `dvc queue status` reports, fed in as the sweep's poll loop reads them."""

import io

import mlflow
import pytest

from seecam.params import parse_params
from seecam.sweep_progress import SweepProgress
from seecam.tracking.stages import PARENT, STAGE

NAMES = ["seed-0-abc123", "seed-1-abc123"]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def store(mlflow_experiment, module_store) -> tuple:
    name = mlflow.get_experiment(mlflow_experiment).name
    return parse_params({"tracking": {"uri": module_store, "experiment": name}}).tracking, mlflow_experiment


def train(experiment: str, name: str, model: str, epochs: int, test_acc: float | None = None) -> str:
    client = mlflow.MlflowClient()
    run = client.create_run(experiment, tags={"dvc_exp_name": name, "model": model, "seed": name.split("-")[1]})
    for epoch in range(1, epochs + 1):
        client.log_metric(run.info.run_id, "val_acc", 0.5, step=epoch)
    if test_acc is not None:  # as the evaluate stage logs it: on its record, a child run of the training run
        record = client.create_run(experiment, tags={PARENT: run.info.run_id, STAGE: "evaluate", "model": model})
        client.log_metric(record.info.run_id, "test_acc", test_acc)
        client.set_terminated(record.info.run_id, "FINISHED")
        client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def test_a_log_gets_a_line_per_experiment_started_and_finished_and_the_epochs_with_the_time_left(store):
    tracking, experiment = store
    out, clock = io.StringIO(), Clock()
    progress = SweepProgress(NAMES, ["cnn", "se"], epochs=4, tracking=tracking, out=out, clock=clock, every=30)
    progress.started(jobs=2)
    progress.update({NAMES[0]: "Running", NAMES[1]: "Queued"})
    clock.now += 60
    train(experiment, NAMES[0], "cnn", 4, 0.9123)
    train(experiment, NAMES[0], "se", 2)
    progress.update({NAMES[0]: "Running", NAMES[1]: "Queued"})
    clock.now += 60
    train(experiment, NAMES[0], "se", 0, 0.9301)  # the evaluate stage logged the test accuracy
    progress.update({NAMES[1]: "Running", NAMES[0]: "Success"})  # one poll: seed 0 ended and freed its worker
    clock.now += 5
    progress.update({NAMES[0]: "Success", NAMES[1]: "Failed"})
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == ("running 2 experiments on 2 queue workers; an experiment's own log: "
                        "dvc queue logs <name>, e.g. dvc queue logs seed-0-abc123")
    assert lines[1] == "seed 0 started (seed-0-abc123)"
    assert lines[2] == "sweep: 6/16 epochs, 0/2 experiments done, about 1m40s left"
    assert lines[3] == "seed 0 finished in 2m00s: test_acc cnn 0.9123, se 0.9301 (seed-0-abc123)"
    assert lines[4] == "seed 1 started (seed-1-abc123)"
    assert lines[5] == "sweep: 8/16 epochs, 1/2 experiments done, about 2m00s left"
    assert lines[6] == "seed 1 failed after 0m05s; see dvc queue logs seed-1-abc123"  # no status line: < 30 s
    assert len(lines) == 7


def test_a_terminal_gets_a_bar_of_epochs_with_the_events_above_it(store):
    tracking, experiment = store
    out, clock = Terminal(), Clock()
    progress = SweepProgress(NAMES[:1], ["cnn"], epochs=3, tracking=tracking, out=out, clock=clock)
    progress.started(jobs=1)
    progress.update({NAMES[0]: "Running"})
    clock.now += 10
    train(experiment, NAMES[0], "cnn", 2)
    progress.update({NAMES[0]: "Running"})
    progress.close()
    text = out.getvalue()
    assert "seed 0 started (seed-0-abc123)" in text
    assert "2/3 epochs" in text and "%|" in text  # tqdm's bar, with its own estimate of the time left
    assert "sweep: 2/3 epochs" not in text  # the log's lines are for logs
