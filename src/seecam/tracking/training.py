"""The training run's lifecycle in MLflow: open or reopen it, repair what a kill left, describe it once, log
each epoch and the model, and close it, so that a resumed training finishes the very run it started.

One run per model per training; both models log the same keys (`model.*`, not `models.cnn.*`) so MLflow's
compare view lines them up. `config_sha` (identity.py) and `seed` find the runs of one configuration again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException

from seecam.code_version import git_commit
from seecam.config_loader import flatten
from seecam.data.store import Dataset
from seecam.history import EpochRow
from seecam.identity import Environment, config_sha, model_sha
from seecam.params import Params, resolved_precision
from seecam.paths import train_stage
from seecam.tracking.store import end_status, one_try_if_down, reopen_run


def run_params(name: str, params: Params, num_parameters: int) -> dict[str, str]:
    """The same keys for both models (`model.*`, not `models.cnn.*`), so MLflow's compare view lines them up."""
    model = flatten(params.model(name))
    model.setdefault("reduction", "none")
    model["num_parameters"] = num_parameters
    out = {f"model.{k}": str(v) for k, v in model.items()}
    return config_params(params) | out | {"seed": str(params.seed)}


def config_params(params: Params) -> dict[str, str]:
    """The params.yaml keys of a training configuration (train.*, data.*: what `seecam sweep -S` sets), as runs
    log them."""
    data = {f"data.{k}": getattr(params.data, k) for k in ("val_size", "subset", "split_seed", "source")}
    return {k: str(v) for k, v in ({f"train.{k}": v for k, v in flatten(params.train).items()} | data).items()}


def run_tags(name: str, params: Params, env: Environment, scheduled_on: str) -> dict[str, str]:
    """Provenance of a training run; `config_sha` + `seed` find the runs of one configuration again, `model_sha`
    which network each is; device, precision (resolved) and torch version say what config_sha holds."""
    tags = {
        "model": name, "git_commit": git_commit(), "dvc_stage": os.environ.get("DVC_STAGE", train_stage(name)),
        "data_sha256": str(env.data_sha256), "device": str(env.device), "scheduled_on": scheduled_on,
        "precision": resolved_precision(params.train.precision, str(env.device)),
        "torch_version": str(env.torch_version), "config_sha": config_sha(params, env),
        "model_sha": model_sha(name, params), "seed": str(params.seed),
    }
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    return tags


def run_name(model: str, seed: int) -> str:
    """`se · seed 3`: a sweep's runs, both models of every seed, told apart in the MLflow runs table."""
    return f"{model} · seed {seed}"


@dataclass
class TrainingRun:
    """The active MLflow run of one training, and whether a checkpoint names it (then a rerun resumes it)."""

    run_id: str
    experiment_id: str
    resumed: bool  # reopened from the checkpoint's run id
    resumable: bool = False  # set by the trainer once a checkpoint holds run_id

    def describe(self, params: dict[str, str], tags: dict[str, str], dataset: Dataset,
                 history: list[EpochRow]) -> None:
        """Describe the run unless a resumed run already is, and log the epochs the checkpoint has and it lacks.

        Tags first, params last: params mean "described", so a kill between the two calls must leave the tags
        (set again, harmlessly) rather than params without tags (never completed). A kill between a checkpoint
        and its epoch's metrics loses that epoch's row here: it is logged now.
        """
        logged = mlflow.get_run(self.run_id)
        if not logged.data.params:
            mlflow.set_tags(tags)
            mlflow.log_params(params)
        if not logged.inputs.dataset_inputs:
            _log_dataset(dataset)
        have = {m.step for m in mlflow.MlflowClient().get_metric_history(self.run_id, "val_acc")}
        for row in history:
            if row.epoch not in have:
                self.log_epoch(row)

    def log_epoch(self, row: EpochRow) -> None:
        """Per-epoch metrics, stepped by epoch."""
        mlflow.log_metrics(row.metrics(), step=row.epoch)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        mlflow.log_figure(figure, artifact_file)

    def log_model(self, model: Any, example: Any) -> str:
        """The run's model URI: one a stopped epilogue already logged (READY) is reused, not logged twice."""
        return _ready_model_uri(self.run_id, self.experiment_id) or _log_torch_model(model, example)


@contextmanager
def training_run(name: str, seed: int, resume_run_id: str | None, experiment_id: str,
                 uri: str) -> Iterator[TrainingRun]:
    """The training's run, active inside the block: the checkpoint's run reopened if the store still has it
    (its models a kill left PENDING marked FAILED), else a new run `<name> · seed N`.

    On the way out it is FINISHED; after an error KILLED (stopped) or FAILED, for the checkpoint to resume.
    A new run that no checkpoint names yet holds nothing a rerun could use: it is deleted instead, so a
    training that fails before its first checkpoint leaves no empty FAILED run.
    """
    run_id = reopen_run(resume_run_id, f"{name}: the checkpoint's MLflow run {resume_run_id}", "training",
                        uri) if resume_run_id else None
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name(name, seed),
                          experiment_id=experiment_id) as active:
        if run_id:
            _fail_pending_models(run_id, experiment_id)
        run = TrainingRun(active.info.run_id, experiment_id, resumed=run_id is not None)
        try:
            yield run
        except BaseException as exc:
            with one_try_if_down(uri):
                if run.resumed or run.resumable:
                    mlflow.end_run(end_status(exc))
                else:
                    _discard_active_run()
            raise


def finished_model_uri(run_id: str, experiment_id: str) -> str | None:
    """The model URI of run `run_id` if it is a FINISHED, active run of this experiment with its model logged:
    what a finished training's record needs to be reused; None otherwise (a wiped store, a deleted run)."""
    try:
        run = mlflow.get_run(run_id)
    except MlflowException:
        return None
    if (run.info.status, run.info.lifecycle_stage, run.info.experiment_id) != ("FINISHED", "active", experiment_id):
        return None
    return _ready_model_uri(run_id, experiment_id)


def mark_killed(run_ids: list[str]) -> None:
    """End still-RUNNING runs that nothing will resume (their checkpoints were discarded)."""
    client = mlflow.MlflowClient()
    for run_id in run_ids:
        try:
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, "KILLED")
        except MlflowException:
            pass  # gone from this store: nothing to close


def _discard_active_run() -> None:
    """End and delete the active run, which holds nothing yet. Never masks the failure on the way out."""
    run = mlflow.active_run()
    try:
        mlflow.end_run("FAILED")
        mlflow.MlflowClient().delete_run(run.info.run_id)
    except Exception:  # noqa: BLE001 (cleanup on the way out of another error: that error is the one to report)
        pass


def _fail_pending_models(run_id: str, experiment_id: str) -> None:
    """A kill during `log_model` leaves a PENDING logged model; mark the run's ones FAILED before resuming."""
    for model in _logged_models(run_id, experiment_id):
        if model.status == LoggedModelStatus.PENDING:
            mlflow.MlflowClient().finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)


def _ready_model_uri(run_id: str, experiment_id: str) -> str | None:
    return next((f"models:/{m.model_id}" for m in _logged_models(run_id, experiment_id)
                 if m.status == LoggedModelStatus.READY), None)


def _logged_models(run_id: str, experiment_id: str) -> list[Any]:
    """The models run `run_id` logged, any status: callers filter by status here, because MLflow 3.17's SQL
    store matches no model on `status = 'PENDING'` (checked)."""
    return mlflow.MlflowClient().search_logged_models(experiment_ids=[experiment_id],
                                                      filter_string=f"source_run_id = '{run_id}'")


def _log_dataset(dataset: Dataset) -> None:
    """Record the training data as an MLflow input (digest = our sha256 of the arrays)."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.http_dataset_source import HTTPDatasetSource

    source = dataset.meta["source"]
    url = str(source.get("url", ""))
    origin = HTTPDatasetSource(url) if url.startswith(("http://", "https://")) else CodeDatasetSource(
        {k: str(v) for k, v in source.items()})
    logged = mlflow.data.from_numpy(features=dataset.train.images, targets=dataset.train.labels, source=origin,
                                    name=f"{source['kind']}-train", digest=dataset.sha256[:32])
    for attempt in range(3):
        try:
            mlflow.log_input(logged, context="training")
            return
        except MlflowException as exc:
            if attempt == 2 or not _lost_dataset_race(exc):
                raise


def _lost_dataset_race(exc: MlflowException) -> bool:
    """MLflow's store looks a data set up, then inserts it: two runs that log the same new one at once (a sweep's
    trainings) both insert, and the second fails on the `datasets` unique key. Tried again, it finds the first
    one's row. SQLite and PostgreSQL say so in their own words, directly or through a server."""
    text = str(exc)
    return "datasets" in text and any(word in text for word in ("UNIQUE constraint failed", "UniqueViolation",
                                                                "duplicate key value"))


def _log_torch_model(model: Any, example: Any) -> str:
    """Log the model (MLflow 3: `name=`, pt2 format from the input example); return its URI.

    The pip requirements are given, not inferred: inference reloads the model in a subprocess to see what
    it imports, measured at 9-12 s of the train stage's epilogue; loading needs torch, numpy (the pyfunc
    input) and mlflow itself, which MLflow always adds.
    """
    import numpy
    import torch
    from mlflow.models import infer_signature

    example = example.detach().cpu()
    with torch.no_grad():
        output = model(example).numpy()
    signature = infer_signature(example.numpy(), output)
    requirements = [*mlflow.pytorch.get_default_pip_requirements(), f"numpy=={numpy.__version__}"]
    info = mlflow.pytorch.log_model(model, name="model", input_example=example.numpy(), signature=signature,
                                    pip_requirements=requirements)
    return info.model_uri
