"""The later stages' logging: evaluate, explain and report add to each model's training run, and the verdict
logs its own run, all by run id (run_by_id), never restarting a run.

Not imported by the train stages: editing these helpers changes neither their dvc.yaml deps nor the
training code digest, so no checkpoint is thrown away and new seeds still pool with old ones.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric

from seecam.paths import train_dir
from seecam.tracking.store import end_status, open_experiment, reopen_run, server_errors, stored_tracking, tracking_uri

CORRECT_ARTIFACT = "evaluate/test_correct.txt"  # evaluate writes it per model run, the verdict reads it


@contextmanager
def model_run(name: str, stage: str) -> Iterator[str]:
    """Reopen the model's training run for a later stage, where run.json says it lives; yield its id.

    reports/train/<name>/run.json names the store, experiment and run id, so evaluate and explain need
    no tracking params of their own. If that run is gone (deleted, store wiped) or run.json is missing,
    say so and log to a new run tagged with the model instead of failing silently.
    The stage logs by run id (log_values, log_text, log_artifact) and never restarts the run (run_by_id).
    """
    info, tracking = stored_tracking(name)
    uri = tracking_uri(tracking)
    with server_errors(uri, f"rerun `dvc repro {stage}` once it is back: it adds to the same runs"):
        experiment_id = open_experiment(tracking)
        where = f"run {info.run_id}" if info else f"{train_dir(name) / 'run.json'}"
        run_id = reopen_run(info.run_id if info else None, f"{name}: training {where}", f"{stage} results", uri)
        client = mlflow.MlflowClient()
        with run_by_id(client, run_id, experiment_id, name, {"model": name}) as run_id:
            yield run_id
            client.set_tag(run_id, f"{stage}_done", "true")


@contextmanager
def run_by_id(client: Any, run_id: str | None, experiment_id: str, name: str, tags: dict[str, str]) -> Iterator[str]:
    """Log to an existing run by its id, or to a new run (`name`, `tags`) ended FINISHED, FAILED or KILLED.

    An existing run is never restarted, so it keeps its status and end time: a server that dies mid-log
    cannot leave it flipped back to RUNNING, and the training run's Duration in the UI stays the training's
    (reopening it with start_run made every later stage add its minutes: 20.9 -> 30.7 min).
    """
    created = run_id is None
    if created:
        run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    try:
        yield run_id
    except BaseException as exc:
        if created:
            client.set_terminated(run_id, end_status(exc))
        raise
    if created:
        client.set_terminated(run_id, "FINISHED")


def log_values(run_id: str, values: dict[str, float]) -> None:
    """Final (stepless) metrics; keys must use MLflow's allowed characters (letters, digits, _-. /:)."""
    now = int(time.time() * 1000)
    mlflow.MlflowClient().log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])


def log_text(run_id: str, text: str, artifact_file: str) -> None:
    mlflow.MlflowClient().log_text(run_id, text, artifact_file)


def log_artifact(run_id: str, path: Path, folder: str) -> None:
    mlflow.MlflowClient().log_artifact(run_id, str(path), folder)
