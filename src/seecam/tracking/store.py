"""Where runs live: the repo root, the default store, run.json, URI resolution, health and connecting.

Default store: `sqlite:///<repo root>/mlflow.db` with artifacts in `<repo root>/mlartifacts`, anchored at
`DVC_ROOT` so `dvc exp run --temp` or `--queue` (which run stages in a temporary copy) still log to the
project's store; run.json records that store as "" (this repo's), so a teammate's clone that pulled it from a
DVC remote opens its own store, never the first clone's path. `tracking.uri` or `MLFLOW_TRACKING_URI` point
elsewhere (any MLflow server, a PostgreSQL backend, S3 artifacts...). A server that does not answer, or an
SQLite store whose file is damaged, is reported before any work starts (check_store), instead of MLflow's minutes
of retries or its 88-line traceback after the outputs were rewritten.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from filelock import FileLock

from seecam.atomic import write_json
from seecam.credentials import masked, mlflow_uri, resolve, without_credentials
from seecam.errors import SeecamError
from seecam.params import TrackingParams, check_tracking_uri
from seecam.paths import train_dir

# `import mlflow` stays inside the functions that call it: it takes ~2 s (python -X importtime, after torch),
# which `seecam check-data` in CI (cli.py imports this module) need not pay.
HEALTH_TIMEOUT_SECONDS = 5.0
SQLITE_BUSY_SECONDS = 2.0  # a queue worker writing holds the store's lock for milliseconds; longer is "busy"
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


def default_artifacts_dir() -> Path:
    """Where the default store's experiments (and `seecam ui`/`server` by default) keep artifacts."""
    return repo_root() / "mlartifacts"


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


def check_store(uri: str) -> None:
    """Fail fast, with one line, if the store `uri` names cannot be used: a server that does not answer its
    health check, or an SQLite file that is not a sound database."""
    check_reachable(uri)
    if uri.startswith("sqlite:///"):
        _check_sqlite(Path(uri.removeprefix("sqlite:///").split("?")[0]).resolve())


@functools.cache  # once per process: evaluate opens the store once per model; a failure raises, so is not cached
def _check_sqlite(path: Path) -> None:
    """`PRAGMA quick_check` (reads every page, ~10 ms for a small store) on an existing file.

    A missing file is MLflow's to create and an empty one is a valid empty database (MLflow fills both); a store
    that another process holds locked past SQLITE_BUSY_SECONDS is busy, not damaged: MLflow waits its turn.
    """
    if not path.is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=SQLITE_BUSY_SECONDS)) as db:
            found = [row[0] for row in db.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            return
        reason = str(exc)
    except sqlite3.DatabaseError as exc:
        reason = str(exc)
    else:
        if found == ["ok"]:
            return
        reason = f"quick_check: {found[0].strip().splitlines()[-1][:100]}"
    raise SeecamError(f"{path}: this MLflow store is damaged ({reason}); move it aside (a new, empty store is made "
                      "in its place), restore a backup, or set tracking.uri / MLFLOW_TRACKING_URI to another store")


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


@contextmanager
def one_try_if_down(uri: str) -> Iterator[None]:
    """Inside, MLflow calls try once, without CLIENT_DEFAULTS' retries, if the server at `uri` no longer answers
    its health check. For ending a run on the way out of an error: when the error is the server's death, the
    retries (6 s) would only fail again, and the stage's one line would come twice as late."""
    if unreachable(uri) is None:
        yield
        return
    kept = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"  # MLflow reads it at each call
    try:
        yield
    finally:
        if kept is None:
            del os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
        else:
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = kept


def connect(uri: str) -> None:
    """Point MLflow at `uri` once it answers (check_store), with retries that give up in seconds and no
    progress bars."""
    import mlflow

    check_store(uri)
    for key, value in CLIENT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    mlflow.set_tracking_uri(mlflow_uri(uri))
    if uri.startswith("sqlite:///"):  # MLflow makes a new SQLite store's tables on first use, in migrations
        with _store_lock(uri):  # that race (a sweep's progress lines and its workers); a server makes its own
            mlflow.MlflowClient().search_experiments(max_results=1)


@contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Serialise SQLite store and experiment creation: processes that first touch a store together (a sweep's
    progress lines, its queue workers) otherwise race on its schema migrations. `<store>.lock` beside the file."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    with FileLock(uri.removeprefix("sqlite:///") + ".lock"):
        yield


def find_experiment(tracking: TrackingParams) -> str | None:
    """Connect to the store (connect: store check first, retries that give up in seconds) and return the id of
    experiment `tracking.experiment`, None if the store has none."""
    import mlflow

    connect(tracking_uri(tracking))
    experiment = mlflow.get_experiment_by_name(tracking.experiment)
    return None if experiment is None else experiment.experiment_id


def open_experiment(tracking: TrackingParams) -> str:
    """find_experiment, creating the experiment if needed (artifacts in default_artifacts_dir for SQLite)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    found = find_experiment(tracking)
    if found is not None:
        return found
    uri = tracking_uri(tracking)
    with _store_lock(uri):  # two queue workers: one creates it, the other finds it
        experiment = mlflow.get_experiment_by_name(tracking.experiment)
        if experiment is not None:
            return experiment.experiment_id
        artifacts = default_artifacts_dir().as_uri() if uri.startswith("sqlite:///") else None
        try:
            return mlflow.create_experiment(tracking.experiment, artifact_location=artifacts)
        except MlflowException as exc:  # a server: another worker created it since the look-up (no lock there)
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return mlflow.get_experiment_by_name(tracking.experiment).experiment_id


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
    config_sha: str = ""  # identity.py: the report matches a verdict against these two
    model_sha: str = ""

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


def end_status(exc: BaseException) -> str:
    """How a run that `exc` ended is marked: KILLED when stopped (Ctrl-C, SIGTERM), else FAILED."""
    return "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
