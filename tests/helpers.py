"""Helpers the tests share, imported by name (`from helpers import ...`; pyproject puts tests/ on sys.path).

Fixtures live in conftest.py files; a helper lives here, because `from helpers import` names whichever
conftest.py pytest imported last once there is more than one.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import signal
import socket
import socketserver
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from seecam.server import SERVER_ENV  # as `seecam server` runs it: no GenAI job runner beside the tests

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# A user's clone may sit in such a folder; the shared pipeline does, so every test of a later stage runs there.
UNUSUAL_DIR = "my project é"
# A user's git knows who they are; a test's may not: the environment that lets `git commit` run as a user runs it.
GIT_IDENTITY = {f"GIT_{who}_{what}": "t" for who in ("AUTHOR", "COMMITTER") for what in ("NAME", "EMAIL")}


@dataclass
class LocalServer:
    """Serves `root` on 127.0.0.1; `fail_next` answers that many requests with 503 first."""

    root: Path
    url: str = ""
    requests: list[str] = field(default_factory=list)
    fail_next: int = 0


@contextlib.contextmanager
def serving(handler: type[socketserver.BaseRequestHandler]) -> Iterator[str]:
    """Serve `handler` from 127.0.0.1 (a thread per connection); yield the base URL, stop the server after."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True  # a handler still trickling to a client that gave up must not block the stop
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def tool_env(**extra: str) -> dict[str, str]:
    """Environment in which dvc stage commands find this venv's python (and no outside MLflow URI)."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MLFLOW_TRACKING_URI", None)
    return env | extra


@dataclass
class RepoCopy:
    """A git-initialised copy of the project's tracked files, for real `dvc repro` runs."""

    root: Path
    repro_log: str = ""  # stdout of the fixture's `dvc repro`, for tests of what the stages print

    def run(self, *args: str, check: bool = True, timeout: float = 900, **env: str) -> subprocess.CompletedProcess:
        result = subprocess.run(args, cwd=self.root, env=tool_env(**env), capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def dvc(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        return self.run(str(VENV_BIN / "dvc"), *args, check=check, **env)

    def commit(self, message: str, *flags: str) -> None:
        """`git add -A` and `git commit` of everything git does not ignore, as a user would (dvc exp needs a commit)."""
        self.run("git", "add", "-A")
        self.run("git", "commit", "-qm", message, *flags, **GIT_IDENTITY)

    def spawn(self, *args: str, **env: str) -> subprocess.Popen:
        """Start a command in its own process group, so a test can SIGKILL it with its children."""
        return subprocess.Popen(args, cwd=self.root, env=tool_env(**env), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def checkpoint(self, name: str) -> dict | None:
        """The state of `name`'s training checkpoint, None while there is none (or it is mid-replace)."""
        for path in (self.root / "checkpoints").glob(f"{name}-*.ckpt"):
            try:
                return torch.load(path, weights_only=True) | {"path": path}
            except (OSError, RuntimeError, EOFError):
                pass
        return None

    def wait_for_checkpoint(self, name: str, epoch: int, process: subprocess.Popen, timeout: float = 300) -> dict:
        """Block until `name`'s checkpoint is at `epoch` or later; fail if training ends first."""
        deadline = time.monotonic() + timeout
        while (state := self.checkpoint(name)) is None or state["epoch"] < epoch:
            assert process.poll() is None, f"training ended before its epoch-{epoch} checkpoint"
            assert time.monotonic() < deadline, f"no epoch-{epoch} checkpoint after {timeout} s"
            time.sleep(0.05)
        return state

    def stage(self, script: str, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        """Run a stage script directly, as DVC would (cwd = repo root)."""
        return self.run(sys.executable, f"stages/{script}.py", *args, check=check, **env)

    def use_tiny_synthetic_data(self, epochs: int = 2, train_size: int = 600, test_size: int = 200) -> None:
        """Small, fast settings: synthetic data, few epochs, and evaluate's bootstrap and timings at small sizes
        (1.7 s less of each evaluate of two models)."""
        self.set_params(data__source="synthetic", data__val_size=100, train__epochs=epochs,
                        data__synthetic={"train_size": train_size, "test_size": test_size, "seed": 0},
                        evaluate__bootstrap_samples=100, evaluate__latency_repeats=2, evaluate__timing_rounds=3,
                        evaluate__throughput_batch=32)

    def use_tiny_explain(self) -> None:
        """explain on two images, faithfulness on 40: for tests that need explain to run, not its figures."""
        self.set_params(explain__faithfulness_samples=40, explain__images=[1, 2])

    def set_params(self, **dotted: object) -> None:
        """Set params like `data__source="synthetic"` (double underscore = dot)."""
        path = self.root / "params.yaml"
        params = yaml.safe_load(path.read_text())
        for key, value in dotted.items():
            node = params
            *parents, last = key.split("__")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        path.write_text(yaml.dump(params, Dumper=NoAliasDumper, sort_keys=False))


class NoAliasDumper(yaml.SafeDumper):
    """Writes a value used twice (one list in two model blocks) out twice: seecam refuses YAML aliases."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def copy_repo(destination: Path) -> RepoCopy:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    subprocess.run(["git", "init", "-q"], cwd=destination, check=True)
    return RepoCopy(destination)


def copy_with_store(repo: RepoCopy, root: Path) -> RepoCopy:
    """A copy of a repo that ran (its git, DVC cache, outputs and MLflow store), for a test that changes it:
    seconds, where a `dvc repro` of its own takes a minute. The copy's MLflow store keeps its artifacts in it."""
    shutil.copytree(repo.root, root, symlinks=True)
    old, new = (repo.root / "mlartifacts").as_uri(), (root / "mlartifacts").as_uri()
    with contextlib.closing(sqlite3.connect(root / "mlflow.db")) as db, db:
        for table, column in (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                              ("logged_models", "artifact_location")):
            db.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (old, new))
    return RepoCopy(root)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MlflowServer:
    url: str
    process: subprocess.Popen


def start_mlflow_server(root: Path, port: int) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1:port with its SQLite store and artifacts under root; waits until healthy."""
    log = root / "server.log"
    with log.open("a") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "art")],
            stdout=out, stderr=subprocess.STDOUT, env=tool_env() | SERVER_ENV, start_new_session=True,
        )
    wait_until_answering(f"http://127.0.0.1:{port}/health", process, log=log)
    return process


def wait_until_answering(url: str, process: subprocess.Popen, timeout: float = 120, log: Path | None = None) -> None:
    """Block until `url` answers a GET. If `process` (the server) ends or `timeout` passes first, stop its process
    group and fail with the tail of its `log`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_process_group(process)
                tail = log.read_text()[-3000:] if log is not None and log.is_file() else ""
                raise RuntimeError(f"{url} did not answer (exit code {process.returncode}): {tail}") from None
            time.sleep(0.3)


def start_ui(root: Path, port: int, lines: int) -> tuple[subprocess.Popen, list[str]]:
    """`seecam ui` (what `make ui` runs) in `root` on 127.0.0.1:port, healthy; with the first `lines` it printed."""
    process = subprocess.Popen([str(VENV_BIN / "seecam"), "ui", "--port", str(port)], cwd=root, env=tool_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    printed = [process.stdout.readline() for _ in range(lines)]
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/health", process)
    except RuntimeError as exc:
        raise RuntimeError(f"seecam ui did not start: {printed}") from exc
    return process, printed


def mlflow_client(root: Path) -> Any:
    """An MlflowClient on the repo's default store, sqlite:///<root>/mlflow.db."""
    from mlflow import MlflowClient

    return MlflowClient(f"sqlite:///{root}/mlflow.db")


def all_runs(root: Path) -> list:
    """Every run in the repo's default store, of every experiment."""
    client = mlflow_client(root)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def records_of(client: Any, run_id: str, stage: str) -> list:
    """The records `stage` (evaluate, explain, report) keeps under training run `run_id`: its child runs."""
    experiment = client.get_run(run_id).info.experiment_id
    return client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{run_id}' and "
                                            f"tags.`seecam.stage` = '{stage}'")


def stop_process_group(process: subprocess.Popen, sig: int = 15) -> None:
    """Signal the process and its children (servers fork workers), then reap it."""
    with contextlib.suppress(ProcessLookupError):  # workers may outlive a leader that already exited
        os.killpg(process.pid, sig)
    process.wait(timeout=30)


class RunsCodeOnLoad:
    """Pickled, it makes `pickle.load` run a shell command (`os.system`): what a hostile model file holds."""

    def __reduce__(self) -> tuple:
        return os.system, ("echo loaded: code ran",)


def imported_modules(stderr: str) -> set[str]:
    """The modules a `python -X importtime` run imported, from its stderr."""
    return {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def gone(process: Any, timeout: float) -> bool:
    """Whether the psutil.Process ends (or is a zombie its new parent has not reaped yet) within `timeout` seconds:
    a process that is not our child cannot be waited for."""
    import psutil

    deadline = time.monotonic() + timeout
    while process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_when(repo: RepoCopy, args: list[str], ready: Callable[[], bool], timeout: float = 120) -> None:
    """Start `args` in its own process group; SIGKILL the whole group as soon as `ready()` holds."""
    process = subprocess.Popen(args, cwd=repo.root, env=tool_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{' '.join(args)} ended (or timed out) before the moment to kill it")
            time.sleep(0.005)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def unfinished_writes(root: Path) -> list[str]:
    """Temp files, partial downloads and swap copies anywhere in the repo (git's own files aside)."""
    return sorted(
        str(path.relative_to(root)) for path in root.rglob("*")
        if ".git" not in path.relative_to(root).parts
        and ((path.name.startswith(".") and path.name.endswith((".tmp", ".old"))) or path.name.endswith(".part"))
    )


def assert_repro_completes_clean(repo: RepoCopy, *targets: str) -> None:
    repo.dvc("repro", *targets)
    assert "up to date" in repo.dvc("status", *targets).stdout
    assert unfinished_writes(repo.root) == []


def hook_count(model: torch.nn.Module) -> int:
    """Forward and backward hooks currently registered on the model's modules (for leak checks)."""
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


OPEN_EXPERIMENT = """
import sys
from seecam.params import TrackingParams
from seecam.tracking.store import find_experiment, open_experiment
uri, experiment, role = sys.argv[1:4]
print((find_experiment if role == "find" else open_experiment)(TrackingParams(uri=uri, experiment=experiment)))
"""

LOG_DATASETS = """
import sys, time
import mlflow
from seecam.data.store import attach_meta
from seecam.data.synthetic import make_synthetic
from seecam.params import TrackingParams
from seecam.tracking.store import open_experiment
from seecam.tracking.training import _log_dataset
uri, experiment, count, start = sys.argv[1:5]
data = make_synthetic(20, 10, 0)
with mlflow.start_run(experiment_id=open_experiment(TrackingParams(uri=uri, experiment=experiment))):
    time.sleep(max(0.0, float(start) - time.time()))  # every process at the same instant, imports done
    for n in range(int(count)):  # a new data set each time: each a chance to race the other processes
        _log_dataset(attach_meta(data, {"kind": f"synthetic{n}", "seed": 0}))
"""


def at_once(script: str, argvs: list[list[str]]) -> list[str]:
    """Run `python -c script` once per argv, all at once (the store's races); every one must succeed. Their
    stdouts, stripped."""
    processes = [subprocess.Popen([sys.executable, "-c", script, *argv], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=tool_env()) for argv in argvs]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [p.returncode for p in processes] == [0] * len(argvs), [err[-400:] for _, err in outputs]
    return [out.strip() for out, _ in outputs]
