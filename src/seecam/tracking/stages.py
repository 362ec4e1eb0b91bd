"""The later stages' records: evaluate, explain and report log into child runs of each model's training run, and
the verdict logs its own run, all by run id (run_by_id), never restarting a run.

A record per identity, never overwritten by another configuration's numbers. A stage's record for a model is
a child of that model's training run (tag `mlflow.parentRunId`, MLflow's own nesting, so the UI nests it),
named like `cnn · seed 42 · explain`, one child per stage identity:

- `stage_config_sha` (StageConfig.sha): the stage's own params and the behaviour of its code
  (code_version.code_digest of its dvc.yaml deps). The verdict matches records across training runs by it.
- `stage_sha`: that, plus the training run it reads (run.json's run id) and what the stage resolved (its device
  type, the data's sha256). A rerun of the same identity finds its child by this tag and logs into it (the
  same values again); another identity gets a child of its own. So after any change and its revert, the record
  matching the workspace holds the workspace's numbers, whatever DVC's run cache restored meanwhile.

The device is left out of `stage_config_sha`: evaluate and explain run in exact fp32 everywhere (device.exact_fp32;
tests/gpu checks a CUDA run matches a CPU run within 1e-4), and the verdict, which reads MLflow alone, can then
match records without resolving a device. Not imported by the train stages: editing these helpers changes
neither their dvc.yaml deps nor the training code digest.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, Run
from mlflow.exceptions import MlflowException

from seecam.code_version import PIPELINE, stage_code_digest
from seecam.config_loader import flatten
from seecam.identity import digest
from seecam.paths import train_dir
from seecam.tracking.store import (
    end_status,
    one_try_if_down,
    open_experiment,
    reopen_run,
    server_errors,
    stored_tracking,
    tracking_uri,
)

CORRECT_ARTIFACT = "evaluate/test_correct.txt"  # evaluate writes it per model record, the verdict reads it
PARENT = "mlflow.parentRunId"  # MLflow's nesting tag
STAGE = "seecam.stage"
COPIED = ("model", "seed", "config_sha", "model_sha")  # from the training run: filter records like runs


@dataclass(frozen=True)
class StageConfig:
    """What shapes a later stage's numbers beside the training run it reads: its own params and its code."""

    stage: str
    params: dict[str, str]  # flattened, e.g. {"explain.layer": "block3"}: also logged as the record's params
    code_sha256: str

    @classmethod
    def of(cls, stage: str, params: Any, pipeline: Path = PIPELINE) -> StageConfig:
        """`stage`'s params dataclass (e.g. ExplainParams), flattened under the stage's name, and its code (the
        .py deps `pipeline` lists for it)."""
        flat = {f"{stage}.{key}": str(value) for key, value in flatten(params).items()}
        return cls(stage, flat, stage_code_digest(stage, pipeline))

    @property
    def sha(self) -> str:
        """16 hex digits over stage, params and code: records of this configuration, whichever run they are of."""
        return digest({"stage": self.stage, "params": self.params, "code": self.code_sha256})[:16]

    def record_sha(self, parent_run_id: str, resolved: dict[str, str]) -> str:
        """16 hex digits over the configuration, the training run it reads and what the stage resolved."""
        return digest({"config": self.sha, "parent": parent_run_id} | resolved)[:16]


@contextmanager
def stage_record(name: str, config: StageConfig, resolved: dict[str, str]) -> Iterator[str]:
    """Model `name`'s record of this stage identity, where run.json says its training run lives; yield its id.

    `resolved`: what the stage resolved beside its params (e.g. {"device": "cpu", "data_sha256": ...}). The
    child run of this identity is found by its `stage_sha` tag or made (FINISHED once the block succeeds). If
    the training run is gone (deleted, store wiped) or run.json is missing, say so and make a record of its own,
    tagged with the model, rather than fail.
    """
    info, tracking = stored_tracking(name)
    uri = tracking_uri(tracking)
    with server_errors(uri, f"rerun `dvc repro {config.stage}` once it is back: it completes the same records"):
        experiment_id = open_experiment(tracking)
        client = mlflow.MlflowClient()
        where = f"run {info.run_id}" if info else f"{train_dir(name) / 'run.json'}"
        parent_id = reopen_run(info.run_id if info else None, f"{name}: training {where}", f"{config.stage} results",
                               uri)
        parent = client.get_run(parent_id) if parent_id else None
        sha = config.record_sha(info.run_id if info else "", resolved)
        found = [run for run in client.search_runs([experiment_id], f"tags.stage_sha = '{sha}'",
                                                   order_by=["attributes.start_time DESC"])
                 if run.data.tags.get(PARENT) == parent_id]  # a lost training run's record is no child of it
        trained = parent.data.tags if parent else {}
        tags = ({key: trained[key] for key in COPIED if key in trained} | {"model": name, STAGE: config.stage}
                | {"stage_sha": sha, "stage_config_sha": config.sha} | resolved
                | ({PARENT: parent_id} if parent_id else {}))
        run_name = f"{parent.info.run_name if parent else name} · {config.stage}"
        with run_by_id(client, found[0].info.run_id if found else None, experiment_id, run_name, tags) as run_id:
            client.log_batch(run_id, params=[Param(k, v) for k, v in config.params.items()])  # the same again
            yield run_id


def stage_records(experiment_id: str, parents: Iterable[str], config: StageConfig) -> dict[str, Run]:
    """Training run id -> its latest FINISHED record of `config`, for the training runs in `parents` that have
    one: what the verdict pools, and what a link to "the evaluate runs of these trainings" opens."""
    wanted = set(parents)
    found = mlflow.MlflowClient().search_runs(
        [experiment_id], f"tags.stage_config_sha = '{config.sha}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"], max_results=50_000)
    return {run.data.tags[PARENT]: run for run in found if run.data.tags.get(PARENT) in wanted}  # latest wins


def missing_records(names: Iterable[str], configs: Iterable[StageConfig]) -> list[tuple[str, str]]:
    """(model, what) MLflow lacks for the workspace's models and stage configurations: "training" for a training
    run that is gone, else the stage whose record of this configuration is missing.

    DVC's run cache restores outputs without running any code, so after a new store or a deleted run the
    record matching the workspace may be missing; the report says so rather than point at another's numbers.
    """
    missing = []
    configs = list(configs)
    for name in names:
        info, tracking = stored_tracking(name)
        with server_errors(tracking_uri(tracking), "rerun `dvc repro report` once it is back"):
            experiment_id = open_experiment(tracking)
            if info is None or not _active(info.run_id):
                missing.append((name, "training"))
                continue
            missing += [(name, config.stage) for config in configs
                        if info.run_id not in stage_records(experiment_id, [info.run_id], config)]
    return missing


def _active(run_id: str) -> bool:
    try:
        return mlflow.get_run(run_id).info.lifecycle_stage == "active"
    except MlflowException:
        return False


@contextmanager
def run_by_id(client: Any, run_id: str | None, experiment_id: str, name: str, tags: dict[str, str]) -> Iterator[str]:
    """Log to an existing run by its id, or to a new run (`name`, `tags`) ended FINISHED, FAILED or KILLED.

    An existing run is never restarted, so it keeps its end time: a server that dies mid-log cannot leave it
    flipped back to RUNNING (reopening a run with start_run made every later stage add its minutes to the
    training's Duration: 20.9 -> 30.7 min). One that a failure left unfinished is FINISHED once this block
    completes it.
    """
    created = run_id is None
    if created:
        run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    try:
        yield run_id
    except BaseException as exc:
        if created:
            with one_try_if_down(client.tracking_uri):
                client.set_terminated(run_id, end_status(exc))
        raise
    if created or client.get_run(run_id).info.status != "FINISHED":
        client.set_terminated(run_id, "FINISHED")


def log_values(run_id: str, values: dict[str, float]) -> None:
    """Final (stepless) metrics; keys must use MLflow's allowed characters (letters, digits, _-. /:)."""
    now = int(time.time() * 1000)
    mlflow.MlflowClient().log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])


def log_text(run_id: str, text: str, artifact_file: str) -> None:
    mlflow.MlflowClient().log_text(run_id, text, artifact_file)


def log_artifact(run_id: str, path: Path, folder: str) -> None:
    mlflow.MlflowClient().log_artifact(run_id, str(path), folder)
