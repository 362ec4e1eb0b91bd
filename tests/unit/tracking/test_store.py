"""Where runs live: the store a URI names, run.json in any clone, and a server that does not answer."""

import http.server
import json
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from filelock import FileLock, Timeout
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from helpers import LOG_DATASETS, OPEN_EXPERIMENT, at_once, free_port, serving
from seecam.errors import SeecamError
from seecam.params import TrackingParams
from seecam.tracking.store import (
    SQLITE_BUSY_SECONDS,
    RunInfo,
    _store_lock,
    check_reachable,
    check_store,
    one_try_if_down,
    stored_tracking,
    tracking_uri,
)


def test_uri_precedence_env_then_param_then_dvc_root(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert tracking_uri(TrackingParams()) == f"sqlite:///{tmp_path}/mlflow.db"
    assert tracking_uri(TrackingParams(uri="http://host:5000")) == "http://host:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert tracking_uri(TrackingParams(uri="http://host:5000")) == "http://env:5000"


def test_a_store_in_a_path_with_a_space_comes_back_through_the_check(monkeypatch, tmp_path):
    """mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI, so the default store of a clone in `my dir/` comes
    back through seecam's own check: a space in a file path is fine, in a server's URL it is not."""
    root = tmp_path / "my dir é"
    monkeypatch.setenv("DVC_ROOT", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = tracking_uri(TrackingParams())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert tracking_uri(TrackingParams()) == uri == f"sqlite:///{root}/mlflow.db"
    assert tracking_uri(TrackingParams(uri=f"file://{root}/mlruns")) == uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://my host:5000")
    with pytest.raises(SeecamError, match="MLFLOW_TRACKING_URI must be '' .* got 'http://my host:5000'"):
        tracking_uri(TrackingParams())


def test_default_store_outside_dvc_is_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking_uri(TrackingParams()) == f"sqlite:///{tmp_path}/mlflow.db"


def test_unreachable_server_fails_fast_with_one_line():
    uri = f"http://127.0.0.1:{free_port()}"
    began = time.monotonic()
    with pytest.raises(SeecamError, match=f"MLflow tracking server {uri} is unreachable .*make ui"):
        check_reachable(uri)
    assert time.monotonic() - began < 5


@pytest.mark.parametrize("healthy", [True, False], ids=["health-ok", "health-503"])
def test_calls_inside_one_try_if_down_are_retried_only_while_the_server_answers_its_health_check(healthy,
                                                                                                  monkeypatch):
    """A server that answers every MLflow call 503: the retries stay while its health check answers, and a
    failing health check (it died) leaves one try, so ending a run on the way out does not wait them out."""
    tried: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.answer()

        def do_POST(self):  # noqa: N802
            self.answer()

        def answer(self):
            tried.append(self.path)
            ok = self.path == "/health" and healthy
            self.send_response(200 if ok else 503)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}" if ok else b"no")

        def log_message(self, *args):
            pass

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    with serving(Handler) as url, pytest.raises(MlflowException), one_try_if_down(url):
        MlflowClient(url).set_terminated("0" * 32, "FAILED")
    calls = [path for path in tried if path != "/health"]
    assert tried[0] == "/health" and len(calls) == (1 + 3 if healthy else 1), tried
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3"  # as it was


def test_make_ui_is_suggested_only_for_a_server_on_this_machine():
    """`make ui` serves this project's store on 127.0.0.1: no help for a team's server elsewhere."""
    port = free_port()
    with pytest.raises(SeecamError, match=rf"unreachable .*; start it \(`PORT={port} make ui`\) or set"):
        check_reachable(f"http://localhost:{port}")
    with pytest.raises(SeecamError) as remote:
        check_reachable("http://mlflow.invalid:5000")
    assert "make ui" not in str(remote.value) and "check that it runs and that the URL is right" in str(remote.value)


def test_run_json_names_the_default_store_as_this_repos_store_in_any_clone(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first, second = tmp_path / "first", tmp_path / "second"
    monkeypatch.setenv("DVC_ROOT", str(first))
    path = tmp_path / "run.json"
    RunInfo("r1", "1", "seecam", tracking_uri(TrackingParams())).save(path)
    assert json.loads(path.read_text())["tracking_uri"] == ""
    assert RunInfo.load(path).tracking_uri == f"sqlite:///{first}/mlflow.db"

    monkeypatch.setenv("DVC_ROOT", str(second))
    assert RunInfo.load(path).tracking_uri == f"sqlite:///{second}/mlflow.db"


def test_run_json_keeps_a_server_url_and_an_explicit_store(monkeypatch, tmp_path):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    explicit = tmp_path / "team.db"
    explicit.touch()
    for uri in ("http://127.0.0.1:5000", f"sqlite:///{explicit}", "postgresql://u@db/mlflow"):
        RunInfo("r1", "1", "seecam", uri).save(tmp_path / "run.json")
        assert json.loads((tmp_path / "run.json").read_text())["tracking_uri"] == uri
        assert RunInfo.load(tmp_path / "run.json").tracking_uri == uri


def test_an_old_run_json_naming_a_store_missing_here_means_this_repos_store(monkeypatch, tmp_path):
    """Before run.json was portable it held the first clone's absolute path: never create a store there."""
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "clone"))
    gone = tmp_path / "first-clone" / "mlflow.db"
    (tmp_path / "run.json").write_text(json.dumps(
        {"run_id": "r1", "experiment_id": "1", "experiment": "seecam", "tracking_uri": f"sqlite:///{gone}"}))
    assert RunInfo.load(tmp_path / "run.json").tracking_uri == f"sqlite:///{tmp_path}/clone/mlflow.db"
    assert not gone.parent.exists()


def test_unreachable_server_message_masks_its_password():
    port = free_port()
    with pytest.raises(SeecamError, match=rf"server http://alice:\*\*\*@127\.0\.0\.1:{port} is unreachable") as err:
        check_reachable(f"http://alice:s3cret@127.0.0.1:{port}")
    assert "s3cret" not in str(err.value)


def test_run_json_keeps_the_uri_masked_and_the_stage_reconnects_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    RunInfo("r1", "0", "e", "postgresql://u:***@db/x").save(tmp_path / "reports/train/cnn/run.json")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://u:pw@db/x")
    assert stored_tracking("cnn")[1].uri == "postgresql://u:pw@db/x"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(SeecamError, match="run.json does not keep"):
        stored_tracking("cnn")



@pytest.fixture(scope="module")
def store_bytes(tmp_path_factory):
    """The file of a real MLflow SQLite store with one experiment and one run (MLflow's migrations take seconds)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    client = MlflowClient(f"sqlite:///{path}")
    client.create_run(client.create_experiment("seecam"))
    return path.read_bytes()


FIX = ("move it aside (a new, empty store is made in its place), restore a backup, or set tracking.uri / "
       "MLFLOW_TRACKING_URI to another store")
DAMAGE = {"truncated": lambda data: data[: len(data) // 2],
          "random bytes": lambda data: os.urandom(len(data)),
          "a page overwritten": lambda data: data[:8192] + os.urandom(4096) + data[12288:]}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_sqlite_store_is_one_line_naming_the_file_and_the_fix(tmp_path, store_bytes, damage):
    """MLflow's own answer was an 88-line SQLAlchemy traceback, after evaluate had rewritten its outputs."""
    path = tmp_path / "my dir é" / "mlflow.db"
    path.parent.mkdir()
    path.write_bytes(DAMAGE[damage](store_bytes))
    began = time.monotonic()
    with pytest.raises(SeecamError) as info:
        check_store(f"sqlite:///{path}")
    assert time.monotonic() - began < 3
    message = str(info.value)
    assert message.startswith(f"{path}: this MLflow store is damaged (") and message.endswith(f"); {FIX}")
    assert "\n" not in message and len(message) < 400


def test_a_sound_empty_missing_or_busy_store_passes_the_check(tmp_path, store_bytes):
    """An empty file is a valid empty database (MLflow fills it); a missing one is made by MLflow, not by the check;
    a store another process is writing is busy, not damaged."""
    path = tmp_path / "mlflow.db"
    path.write_bytes(store_bytes)
    check_store(f"sqlite:///{path}")
    empty = tmp_path / "empty.db"
    empty.touch()
    check_store(f"sqlite:///{empty}")
    check_store(f"sqlite:///{tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()
    busy = tmp_path / "busy.db"  # a store not checked before in this process (a sound one is checked once)
    busy.write_bytes(store_bytes)
    writer = sqlite3.connect(busy)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        began = time.monotonic()
        check_store(f"sqlite:///{busy}")
        assert time.monotonic() - began >= SQLITE_BUSY_SECONDS
    finally:
        writer.rollback()
        writer.close()


def test_the_store_lock_keeps_every_other_holder_out_until_it_is_released(tmp_path):
    """Whoever holds `<store>.lock` (another process's _store_lock, probed here from another thread, as flock
    locks are per open file) cannot take it while this one holds it, and can at once after; its folder is made."""
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"

    def taken_elsewhere() -> bool:
        probe = FileLock(tmp_path / "new" / "mlflow.db.lock")
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return False
        probe.release()
        return True

    with ThreadPoolExecutor(1) as elsewhere:
        with _store_lock(uri):
            assert not elsewhere.submit(taken_elsewhere).result()
        assert elsewhere.submit(taken_elsewhere).result()


def test_a_server_store_takes_no_local_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with _store_lock("http://127.0.0.1:5000"):
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("attempt", range(3))
def test_processes_that_first_touch_a_new_sqlite_store_at_once_all_get_it(tmp_path, attempt):
    """A sweep's progress lines (find_experiment) and its queue workers (open_experiment) first touched the same new
    store together: MLflow's schema migrations raced and a worker died ("Online migration expected to match one
    row"), failing its seed after 0 s. Whoever touches the store first now creates it alone."""
    outputs = at_once(OPEN_EXPERIMENT, [[f"sqlite:///{tmp_path / 'mlflow.db'}", "seecam", role]
                                        for role in ("find", "open", "open")])
    assert set(outputs[1:]) == {"1"}


def test_runs_that_log_the_same_new_dataset_at_once_all_record_it(tmp_path):
    """Two trainings of a sweep (two seeds, or cnn and se of one) that log the same data set together raced in
    MLflow's store: both found no `datasets` row, both inserted one, and the second died on its UNIQUE constraint
    (a traceback, exit 1, its seed lost). Every run now records every data set, and the store holds each once."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    at_once(OPEN_EXPERIMENT, [[uri, "seecam", "open"]])
    at_once(LOG_DATASETS, [[uri, "seecam", "20", str(time.time() + 8)]] * 4)
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        assert db.execute("SELECT count(*) FROM datasets").fetchone() == (20,)
        assert db.execute("SELECT count(*) FROM inputs WHERE source_type = 'DATASET'").fetchone() == (80,)
