"""What `seecam sweep --run` says while DVC's queue trains, so a sweep of hours is never silent.

A line as each experiment starts and as it ends (its seed, each model's test accuracy, its time, or where its
log is when it failed), and a status: epochs trained of all the sweep's epochs, with the time left. On a terminal
that status is a tqdm bar under the event lines; in a log it is a plain line at most every `every` seconds.

DVC's queue runs each experiment in a worker whose log (`dvc queue logs <name>`) the sweep does not read:
`reports/train/<name>/history.csv` is written only when a training ends. The epochs come from MLflow instead,
where every training run logs each epoch's `val_acc` as it ends, tagged with its experiment's name
(`dvc_exp_name`); the test accuracies come from their evaluate records (child runs, tracking/stages.py) once
evaluate has logged them (experiment_results is the one place that knows where they live).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from tqdm import tqdm

from seecam.params import TrackingParams

DONE = ("Success", "Failed")  # `dvc queue status` states after which a task never changes
BAR_SECONDS = 10.0  # how often a terminal's bar reads MLflow (one query per training run)


@dataclass
class Trained:
    """One experiment's training runs as MLflow has them now: epochs logged over all models, test_acc by model."""

    epochs: int = 0
    test_acc: dict[str, float] = field(default_factory=dict)


def experiment_results(experiment_id: str, names: list[str]) -> dict[str, Trained]:
    """Per experiment name: the epochs its training runs logged and each model's test_acc (tag `model`)."""
    import mlflow

    from seecam.tracking.stages import PARENT, STAGE

    client = mlflow.MlflowClient()
    found = {name: Trained() for name in names}
    training: dict[str, Trained] = {}  # training run id -> its experiment's entry
    for run in client.search_runs([experiment_id], "tags.dvc_exp_name LIKE 'seed-%'", max_results=5000):
        trained = found.get(run.data.tags.get("dvc_exp_name", ""))
        if trained is not None:
            training[run.info.run_id] = trained
            trained.epochs += len(client.get_metric_history(run.info.run_id, "val_acc"))
    for record in client.search_runs([experiment_id], f"tags.`{STAGE}` = 'evaluate'", max_results=50_000,
                                     order_by=["attributes.start_time ASC"]):  # the latest record wins
        trained = training.get(record.data.tags.get(PARENT, ""))
        if trained is not None and "test_acc" in record.data.metrics:
            trained.test_acc[record.data.tags.get("model", "?")] = record.data.metrics["test_acc"]
    return found


def duration(seconds: float) -> str:
    """2m05s, 1h02m."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"


class SweepProgress:
    """Feed it each poll's queue states (update); it prints what changed."""

    def __init__(self, names: list[str], models: list[str], epochs: int, tracking: TrackingParams,
                 out: TextIO = sys.stdout, clock: Callable[[], float] = time.monotonic, every: float = 60.0) -> None:
        self.names, self.models, self.tracking, self.out, self.clock, self.every = (
            names, models, tracking, out, clock, every)
        self.total = len(names) * len(models) * epochs
        self.states: dict[str, str] = {}
        self.began: dict[str, float] = {}
        self.start = self.last_status = clock()
        self.done_epochs = 0
        self.experiment_id: str | None = None
        self.bar: Any = None

    def started(self, jobs: int) -> None:
        self.start = self.last_status = self.clock()
        self._say(f"running {len(self.names)} experiments on {jobs} queue worker{'s' * (jobs > 1)}; an experiment's "
                  f"own log: dvc queue logs <name>, e.g. dvc queue logs {self.names[0]}")
        if self.out.isatty():
            self.bar = tqdm(total=self.total, desc="sweep", file=self.out, dynamic_ncols=True,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} epochs "
                                       "[{elapsed}<{remaining}]{postfix}")

    def update(self, states: dict[str, str]) -> None:
        """Say which experiments started, finished or failed since the last call, then the epochs done."""
        now = self.clock()
        changed = {name: state for name, state in states.items() if self.states.get(name) != state}
        results = self._results() if changed or self._status_due(now) else {}
        for name, state in sorted(changed.items(), key=lambda item: item[1] not in DONE):  # ends free workers
            seed = name.split("-")[1]
            if state == "Running" or (state in DONE and name not in self.began):
                self.began.setdefault(name, now)
                if state == "Running":
                    self._say(f"seed {seed} started ({name})")
            if state == "Success":
                accuracy = ", ".join(f"{model} {acc:.4f}" for model, acc in
                                     sorted(results.get(name, Trained()).test_acc.items()))
                self._say(f"seed {seed} finished in {duration(now - self.began[name])}: "
                          f"test_acc {accuracy or 'not logged'} ({name})")
            elif state == "Failed":
                self._say(f"seed {seed} failed after {duration(now - self.began[name])}; see dvc queue logs {name}")
        self.states |= changed
        if results:
            self._status(now, results)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _status_due(self, now: float) -> bool:
        return now - self.last_status >= (BAR_SECONDS if self.bar is not None else self.every)

    def _status(self, now: float, results: dict[str, Trained]) -> None:
        per_experiment = self.total // len(self.names)
        finished = [name for name in self.names if self.states.get(name) == "Success"]
        done = sum(per_experiment if name in finished else min(results[name].epochs, per_experiment)
                   for name in self.names)
        experiments = f"{len(finished)}/{len(self.names)} experiments done"
        if self.bar is not None:
            self.bar.set_postfix_str(experiments, refresh=False)
            self.bar.update(done - self.bar.n)
            self.last_status = now
        elif done != self.done_epochs and self._status_due(now):
            left = (now - self.start) / done * (self.total - done) if done else None
            self._say(f"sweep: {done}/{self.total} epochs, {experiments}"
                      + (f", about {duration(left)} left" if left is not None else ""))
            self.last_status = now
        self.done_epochs = done

    def _results(self) -> dict[str, Trained]:
        """The experiments' runs in MLflow; nothing this time if the store cannot be read (a progress line is not
        worth stopping a sweep for: the queue's own state still decides)."""
        from seecam.tracking.store import find_experiment

        try:
            self.experiment_id = self.experiment_id or find_experiment(self.tracking)
            return experiment_results(self.experiment_id, self.names) if self.experiment_id else {}
        except Exception:  # noqa: BLE001 (SQLite busy under the workers' writes, a server restarting...)
            return {}

    def _say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.out)
        else:
            print(line, file=self.out, flush=True)
