"""MLflow: where runs go, one run per model, and the keys both runs share.

Default store: `sqlite:///<repo root>/mlflow.db` with artifacts in
`<repo root>/mlartifacts`, anchored at `DVC_ROOT` so `dvc exp run --temp` or
`--queue` (which run stages in a temporary copy) still log to the project's
store; run.json records that store as "" (this repo's), so a teammate's clone that
pulled it from a DVC remote opens its own store, never the first clone's path.
`tracking.uri` or `MLFLOW_TRACKING_URI` point elsewhere (any MLflow
server, a PostgreSQL backend, S3 artifacts...). A server that does not answer
is reported before any training starts, instead of MLflow's minutes of retries.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from seecam.atomic import write_json
from seecam.code_version import training_code_digest
from seecam.config_loader import flatten
from seecam.credentials import masked, mlflow_uri, resolve, without_credentials
from seecam.errors import SeecamError
from seecam.params import MODELS, Params, TrackingParams, check_tracking_uri
from seecam.paths import DATA_DIR, train_dir

# `import mlflow` stays inside the functions that call it: it takes ~2 s (python -X importtime, after torch),
# which `seecam check-data` in CI (cli.py imports this module) need not pay.
HEALTH_TIMEOUT_SECONDS = 5.0
CORRECT_ARTIFACT = "evaluate/test_correct.txt"  # evaluate writes it per model run, the verdict reads it
# MLflow's own defaults (7 retries, backoff 2, 120 s timeout) hang ~500 s on a dead server; these give up
# within ~10-40 s. Its artifact progress bars go to stderr even in a log. Used only where the user has not
# set them.
CLIENT_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                   "MLFLOW_HTTP_REQUEST_TIMEOUT": "10", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def repo_root() -> Path:
    """The project root: DVC_ROOT under DVC (also for temp/queued experiments), else the cwd."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def tracking_uri(tracking: TrackingParams) -> str:
    """MLFLOW_TRACKING_URI (checked like tracking.uri), else tracking.uri, else the project's SQLite store."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        check_tracking_uri(os.environ["MLFLOW_TRACKING_URI"], "MLFLOW_TRACKING_URI")
        return os.environ["MLFLOW_TRACKING_URI"]
    return tracking.uri or default_store_uri()


def default_store_uri() -> str:
    """This repo's SQLite store (the clone's own: mlflow.db is in no git commit and no DVC output)."""
    return f"sqlite:///{repo_root() / 'mlflow.db'}"


def recorded_uri(uri: str) -> str:
    """How run.json writes a tracking URI: "" for this repo's store, so the file means the same in any clone."""
    return "" if uri == default_store_uri() else uri


def resolved_uri(recorded: str) -> str:
    """The store a run.json's tracking URI names in this clone.

    "" is this repo's store. So is an SQLite file that does not exist here: run.json files written before
    they were portable hold the first clone's absolute path, and reopening it would only create an empty
    store at another clone's path, where the run cannot be. A server URL, or a store that exists, is kept.
    """
    if not recorded:
        return default_store_uri()
    if recorded.startswith("sqlite:///") and not Path(recorded.removeprefix("sqlite:///")).exists():
        return default_store_uri()
    return recorded


def stored_tracking(name: str) -> tuple[RunInfo | None, TrackingParams]:
    """The model's run.json (None if missing) and the tracking params of the store it names.

    run.json keeps the URI masked: the password comes back from MLFLOW_TRACKING_URI (see credentials.resolve).
    """
    info = RunInfo.load(train_dir(name) / "run.json")
    if info is None:
        return None, TrackingParams()
    uri = resolve(info.tracking_uri, os.environ.get("MLFLOW_TRACKING_URI", ""))
    return info, TrackingParams(uri=uri, experiment=info.experiment)


def unreachable(uri: str) -> str | None:
    """Why an http(s) tracking server does not answer its health check, or None if it does (or is no server)."""
    if not uri.startswith(("http://", "https://")):
        return None
    try:
        health = f"{without_credentials(uri).rstrip('/')}/health"
        with urllib.request.urlopen(health, timeout=HEALTH_TIMEOUT_SECONDS) as response:
            response.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        return str(getattr(exc, "reason", exc))
    return None


def check_reachable(uri: str) -> None:
    """Fail fast, with one line, if an http(s) tracking server does not answer its health check.

    `make ui` is suggested only for a server on this machine: it serves this project's store, not a team's.
    """
    reason = unreachable(uri)
    if reason is None:
        return
    parts = urllib.parse.urlsplit(uri)
    if parts.hostname in LOCAL_HOSTS:
        start = "start it (`make ui`)" if parts.port in (None, 5000) else f"start it (`PORT={parts.port} make ui`)"
    else:
        start = "check that it runs and that the URL is right"
    raise SeecamError(f"MLflow tracking server {masked(uri)} is unreachable ({reason}); {start} "
                      "or set tracking.uri / MLFLOW_TRACKING_URI to a running one")


@contextmanager
def server_errors(uri: str, rerun: str) -> Iterator[None]:
    """Turn a tracking server that dies mid-stage into one line instead of MLflow's tracebacks.

    Every stage and `seecam verdict` log inside it (model_run wraps evaluate, explain and report); `rerun` says
    what a rerun does once the server is back. Only when the server no longer answers its health check:
    other MLflow errors are bugs and keep theirs. The wait is bounded by CLIENT_DEFAULTS' retries.
    """
    import requests
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, requests.RequestException) as exc:
        reason = unreachable(uri)
        if reason is not None:
            raise SeecamError(f"MLflow tracking server {masked(uri)} is unreachable ({reason}): it stopped "
                              f"answering mid-stage; {rerun}") from exc
        raise


def connect(uri: str) -> None:
    """Point MLflow at `uri` once it answers, with retries that give up in seconds and no progress bars."""
    import mlflow

    check_reachable(uri)
    for key, value in CLIENT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    mlflow.set_tracking_uri(mlflow_uri(uri))


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
    connect(uri)
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


def config_sha(params: Params, data_sha256: str, code_sha256: str) -> str:
    """16 hex of sha256 over everything that shapes a trained model except `seed`: the verdict pools seeds by it.

    Hashed: train.* (device and compile included: they change the numbers), every models.* block (the whole
    registry, so all models of one configuration share the tag), data.val_size, data.subset, data.source,
    the data's own sha256 (which covers url/md5 or data.synthetic) and the training code's digest
    (code_version.training_code_digest), so runs of different code never pool. Not hashed: seed,
    evaluate.*, explain.*, tracking.* (they do not change the trained weights).
    """
    config = {"train": flatten(params.train), "models": {name: flatten(params.model(name)) for name in MODELS},
              "data": {"val_size": params.data.val_size, "subset": params.data.subset,
                       "source": params.data.source, "sha256": data_sha256}, "code": code_sha256}
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def workspace_config_sha(params: Params) -> str:
    """The config_sha that training with the workspace's params, data (data/cifar10/meta.json) and code would tag."""
    meta = DATA_DIR / "meta.json"
    if not meta.is_file():
        raise SeecamError(f"{meta} is missing, so the workspace's configuration is unknown: "
                          "run `dvc repro download` or pass --config-sha")
    return config_sha(params, json.loads(meta.read_text())["sha256"]["all"], training_code_digest())


def run_tags(name: str, params: Params, data_sha256: str, code_sha256: str, device: str,
             scheduled_on: str) -> dict[str, str]:
    """Provenance of a training run; `config_sha` + `seed` find the runs of one configuration again."""
    tags = {
        "model": name, "git_commit": git_commit(), "dvc_stage": os.environ.get("DVC_STAGE", f"train_{name}"),
        "data_sha256": data_sha256, "device": device, "scheduled_on": scheduled_on,
        "config_sha": config_sha(params, data_sha256, code_sha256), "seed": str(params.seed),
    }
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    return tags


def run_name(model: str, seed: int) -> str:
    """`se · seed 3`: a sweep's runs, both models of every seed, told apart in the MLflow runs table."""
    return f"{model} · seed {seed}"


def git_commit() -> str:
    """HEAD of the checkout the stage runs in ("unknown" outside git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass(frozen=True)
class RunInfo:
    """What `reports/train/<name>/run.json` records, so later stages reopen the same run.

    In memory `tracking_uri` is the store to open; on disk the default store is "" (see recorded_uri).
    """

    run_id: str
    experiment_id: str
    experiment: str
    tracking_uri: str
    model_uri: str = ""

    def save(self, path: Path) -> None:
        write_json(path, self.__dict__ | {"tracking_uri": recorded_uri(self.tracking_uri)})

    @staticmethod
    def load(path: Path) -> RunInfo | None:
        try:
            info = RunInfo(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return replace(info, tracking_uri=resolved_uri(info.tracking_uri))


def reopen_run(run_id: str | None, where: str, what: str, uri: str) -> str | None:
    """`run_id` if that run is in the store and not deleted; else None, after a warning that `what` goes to a
    new run (a wiped store, a changed tracking.uri or a deleted run must not stop the stage)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if run_id is not None:
        try:
            if mlflow.get_run(run_id).info.lifecycle_stage == "active":
                return run_id
        except MlflowException:
            pass
    print(f"warning: {where} not found in {masked(uri)}; logging {what} to a new run", file=sys.stderr)
    return None


def mark_killed(run_id: str) -> None:
    """End a still-RUNNING run that nothing will resume (its checkpoint was discarded)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    try:
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, "KILLED")
    except MlflowException:
        pass  # gone from this store: nothing to close


def end_status(exc: BaseException) -> str:
    """How a run that `exc` ended is marked: KILLED when stopped (Ctrl-C, SIGTERM), else FAILED."""
    return "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"


def discard_active_run() -> None:
    """End and delete the active run, which holds nothing yet: a training that fails before its first
    checkpoint would otherwise leave an empty FAILED run that no rerun resumes. Never masks that failure."""
    import mlflow

    run = mlflow.active_run()
    try:
        mlflow.end_run("FAILED")
        mlflow.MlflowClient().delete_run(run.info.run_id)
    except Exception:  # noqa: BLE001 (cleanup on the way out of another error: that error is the one to report)
        pass


def ready_model_uri() -> str | None:
    """The URI of a READY model the active run already logged, else None.

    An epilogue stopped after `log_model` leaves one: the rerun that finishes the run reuses it instead of
    logging a second model into the run.
    """
    import mlflow
    from mlflow.entities import LoggedModelStatus

    run = mlflow.active_run().info
    for model in mlflow.MlflowClient().search_logged_models(
            experiment_ids=[run.experiment_id], filter_string=f"source_run_id = '{run.run_id}'"):
        if model.status == LoggedModelStatus.READY:
            return f"models:/{model.model_id}"
    return None


def fail_pending_models(run_id: str, experiment_id: str) -> None:
    """A kill during `log_model` leaves a PENDING logged model; mark the run's ones FAILED before resuming."""
    import mlflow
    from mlflow.entities import LoggedModelStatus

    client = mlflow.MlflowClient()
    # filtered here: MLflow 3.17's SQL store matches no model on `status = 'PENDING'` (checked)
    for model in client.search_logged_models(experiment_ids=[experiment_id],
                                             filter_string=f"source_run_id = '{run_id}'"):
        if model.status == LoggedModelStatus.PENDING:
            client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)


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


def describe_run(params: dict[str, Any], tags: dict[str, str]) -> None:
    """Tags first, params last: a resume takes params as "described", so a kill between the two calls must
    leave the tags (set again, harmlessly) rather than params without tags (never completed)."""
    import mlflow

    mlflow.set_tags(tags)
    mlflow.log_params(params)


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
    """Log the model (MLflow 3: `name=`, pt2 format from the input example); return its URI.

    The pip requirements are given, not inferred: inference reloads the model in a subprocess to see what
    it imports, measured at 9-12 s of the train stage's epilogue; loading needs torch, numpy (the pyfunc
    input) and mlflow itself, which MLflow always adds.
    """
    import mlflow
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


@contextmanager
def model_run(name: str, stage: str) -> Iterator[str]:
    """Reopen the model's training run for a later stage, where run.json says it lives; yield its id.

    reports/train/<name>/run.json names the store, experiment and run id, so evaluate and explain need
    no tracking params of their own. If that run is gone (deleted, store wiped) or run.json is missing,
    say so and log to a new run tagged with the model instead of failing silently.
    The stage logs by run id (log_values, log_text, log_artifact) and never restarts the run (run_by_id).
    """
    import mlflow

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
    import mlflow
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    mlflow.MlflowClient().log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])


def log_text(run_id: str, text: str, artifact_file: str) -> None:
    import mlflow

    mlflow.MlflowClient().log_text(run_id, text, artifact_file)


def log_artifact(run_id: str, path: Path, folder: str) -> None:
    import mlflow

    mlflow.MlflowClient().log_artifact(run_id, str(path), folder)
