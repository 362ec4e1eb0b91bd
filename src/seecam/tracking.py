"""MLflow: where runs go, one run per model, and the keys both runs share.

Default store: `sqlite:///<repo root>/mlflow.db` with artifacts in
`<repo root>/mlartifacts`, anchored at `DVC_ROOT` so `dvc exp run --temp` or
`--queue` (which run stages in a temporary copy) still log to the project's
store. `tracking.uri` or `MLFLOW_TRACKING_URI` point elsewhere (any MLflow
server, a PostgreSQL backend, S3 artifacts...). A server that does not answer
is reported before any training starts, instead of MLflow's minutes of retries.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seecam.atomic import write_json
from seecam.errors import SeecamError
from seecam.params import Params, TrackingParams, flatten
from seecam.paths import train_dir

HEALTH_TIMEOUT_SECONDS = 5.0


def repo_root() -> Path:
    """The project root: DVC_ROOT under DVC (also for temp/queued experiments), else the cwd."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def tracking_uri(tracking: TrackingParams) -> str:
    """MLFLOW_TRACKING_URI, else tracking.uri, else the project's SQLite store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or tracking.uri or f"sqlite:///{repo_root() / 'mlflow.db'}"


def check_reachable(uri: str) -> None:
    """Fail fast, with one line, if an http(s) tracking server does not answer its health check."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=HEALTH_TIMEOUT_SECONDS) as response:
            response.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SeecamError(
            f"MLflow tracking server {uri} is unreachable ({reason}); start it (`make ui`) "
            "or set tracking.uri / MLFLOW_TRACKING_URI to a running one"
        ) from None


@contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Serialise SQLite store creation: parallel queue workers otherwise race on its schema."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    lock_path = Path(uri.removeprefix("sqlite:///") + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def open_experiment(tracking: TrackingParams) -> str:
    """Point MLflow at the store, create the experiment if needed; return its id."""
    import mlflow

    uri = tracking_uri(tracking)
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    with _store_lock(uri):
        experiment = mlflow.get_experiment_by_name(tracking.experiment)
        if experiment is not None:
            return experiment.experiment_id
        artifacts = (repo_root() / "mlartifacts").as_uri() if uri.startswith("sqlite:///") else None
        return mlflow.create_experiment(tracking.experiment, artifact_location=artifacts)


def run_params(name: str, params: Params, num_parameters: int) -> dict[str, str]:
    """The same keys for both models (`model.*`, not `models.cnn.*`), so MLflow's compare view lines them up."""
    model = flatten(params.model(name))
    model.setdefault("reduction", "none")
    model["num_parameters"] = num_parameters
    out = {f"train.{k}": v for k, v in flatten(params.train).items()}
    out |= {f"model.{k}": v for k, v in model.items()}
    out |= {"seed": params.seed, "data.val_size": params.data.val_size, "data.subset": params.data.subset,
            "data.source": params.data.source}
    return {k: str(v) for k, v in out.items()}


def run_tags(name: str, data_sha256: str, device: str, scheduled_on: str) -> dict[str, str]:
    tags = {
        "model": name, "git_commit": git_commit(), "dvc_stage": os.environ.get("DVC_STAGE", f"train_{name}"),
        "data_sha256": data_sha256, "device": device, "scheduled_on": scheduled_on,
    }
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    return tags


def git_commit() -> str:
    """HEAD of the checkout the stage runs in ("unknown" outside git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass(frozen=True)
class RunInfo:
    """What `reports/train/<name>/run.json` records, so later stages reopen the same run."""

    run_id: str
    experiment_id: str
    experiment: str
    tracking_uri: str
    model_uri: str = ""

    def save(self, path: Path) -> None:
        write_json(path, self.__dict__)

    @staticmethod
    def load(path: Path) -> RunInfo | None:
        try:
            return RunInfo(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def log_epoch(row: dict[str, float]) -> None:
    """Per-epoch metrics of the active run, stepped by epoch."""
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))


def log_missing_epochs(run_id: str, history: list[dict[str, float]]) -> None:
    """Log the checkpoint's epochs that the run has no metrics for (resume after a kill)."""
    import mlflow

    logged = {m.step for m in mlflow.MlflowClient().get_metric_history(run_id, "val_acc")}
    for row in history:
        if int(row["epoch"]) not in logged:
            log_epoch(row)


def log_dataset(images: Any, labels: Any, source: dict[str, Any], digest: str) -> None:
    """Record the training data as an MLflow input (digest = our sha256 of the arrays)."""
    import mlflow
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.http_dataset_source import HTTPDatasetSource

    url = str(source.get("url", ""))
    origin = HTTPDatasetSource(url) if url.startswith(("http://", "https://")) else CodeDatasetSource(
        {k: str(v) for k, v in source.items()})
    dataset = mlflow.data.from_numpy(features=images, targets=labels, source=origin,
                                     name=f"{source['kind']}-train", digest=digest[:32])
    mlflow.log_input(dataset, context="training")


def log_torch_model(model: Any, example: Any) -> str:
    """Log the model (MLflow 3: `name=`, pt2 format from the input example); return its URI."""
    import mlflow
    import torch
    from mlflow.models import infer_signature

    example = example.detach().cpu()
    with torch.no_grad():
        output = model(example).numpy()
    signature = infer_signature(example.numpy(), output)
    info = mlflow.pytorch.log_model(model, name="model", input_example=example.numpy(), signature=signature)
    return info.model_uri


@contextmanager
def model_run(name: str, stage: str) -> Iterator[str]:
    """Reopen the model's training run for a later stage, where run.json says it lives.

    reports/train/<name>/run.json names the store, experiment and run id, so evaluate and explain need
    no tracking params of their own. If that run is gone (deleted, store wiped) or run.json is missing,
    say so and log to a new run tagged with the model instead of failing silently.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    info = RunInfo.load(train_dir(name) / "run.json")
    tracking = TrackingParams(uri=info.tracking_uri, experiment=info.experiment) if info else TrackingParams()
    experiment_id = open_experiment(tracking)
    run_id = None
    if info is not None:
        try:
            if mlflow.get_run(info.run_id).info.lifecycle_stage == "active":
                run_id = info.run_id
        except MlflowException:
            pass
    if run_id is None:
        where = f"run {info.run_id}" if info else f"{train_dir(name) / 'run.json'}"
        print(f"warning: {name}: training {where} not found in {tracking_uri(tracking)}; "
              f"logging {stage} results to a new run", file=sys.stderr)
    tags = {"model": name} if run_id is None else None
    with mlflow.start_run(run_id=run_id, experiment_id=experiment_id, run_name=None if run_id else name,
                          tags=tags) as run:
        mlflow.set_tag(f"{stage}_done", "true")
        yield run.info.run_id


def log_values(values: dict[str, float]) -> None:
    """Final (stepless) metrics; keys must use MLflow's allowed characters (letters, digits, _-. /:)."""
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in values.items()})


def log_artifact(path: Path, folder: str) -> None:
    import mlflow

    mlflow.log_artifact(str(path), folder)
