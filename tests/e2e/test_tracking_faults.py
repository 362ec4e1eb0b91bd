"""A real tracking server killed while a stage logs (training, evaluate, explain, the verdict): one line within
a bounded wait, nothing flipped back from FINISHED to RUNNING, and a rerun after the restart completes the
same runs."""

import itertools
import json
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from mlflow import MlflowClient

from helpers import copy_repo, free_port, records_of, start_mlflow_server, stop_process_group
from seecam.inference import save_model
from seecam.models import build_model, model_config
from seecam.params import CnnParams, SeParams, load_params
from seecam.tracking.stages import CORRECT_ARTIFACT, PARENT, STAGE, StageConfig


def one_line_once_the_server_dies(stage: subprocess.Popen, server: subprocess.Popen, url: str) -> str:
    """SIGKILL the server: the stage must end within a bounded wait, exit 2, its last line the one `error:`."""
    stop_process_group(server, signal.SIGKILL)
    died = time.monotonic()
    _, stderr = stage.communicate(timeout=300)
    waited = time.monotonic() - died
    assert stage.returncode == 2, stderr
    assert waited < 90, f"took {waited:.0f} s to give up"
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and stderr.strip().splitlines()[-1] == errors[0], stderr
    assert errors[0].startswith(f"error: MLflow tracking server {url} is unreachable"), errors[0]
    print(f"{url} died; the one line came {waited:.1f} s later")
    return errors[0]


def test_server_dying_mid_training_is_one_line_and_the_rerun_completes_the_same_run(repo_copy, tmp_path):
    repo_copy.use_tiny_synthetic_data(epochs=5, train_size=1200)
    repo_copy.stage("download")
    server_root, port = tmp_path / "server", free_port()
    server_root.mkdir()
    uri = f"http://127.0.0.1:{port}"
    server = start_mlflow_server(server_root, port)
    try:
        training = repo_copy.spawn(sys.executable, "stages/train.py", "cnn", MLFLOW_TRACKING_URI=uri)
        state = repo_copy.wait_for_checkpoint("cnn", 1, training)
        assert "checkpoint is kept" in one_line_once_the_server_dies(training, server, uri)
        assert repo_copy.checkpoint("cnn")["run_id"] == state["run_id"]  # kept for the rerun

        server = start_mlflow_server(server_root, port)  # same port, same backend store
        rerun = repo_copy.stage("train", "cnn", MLFLOW_TRACKING_URI=uri)
        assert "resuming from" in rerun.stderr
        run = MlflowClient(uri).get_run(state["run_id"])
        assert run.info.status == "FINISHED" and f'"run_id": "{state["run_id"]}"' in (
            repo_copy.root / "reports/train/cnn/run.json").read_text()
        steps = [m.step for m in MlflowClient(uri).get_metric_history(state["run_id"], "val_acc")]
        assert sorted(steps) == [1, 2, 3, 4, 5]
        assert repo_copy.checkpoint("cnn") is None
    finally:
        stop_process_group(server)


class KillableServer:
    """A real `mlflow server` on a fixed 127.0.0.1 port that a test kills and starts again on the same store."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = start_mlflow_server(root, self.port)

    def metric_rows(self) -> int:
        """Metric rows in the server's SQLite store (read beside the server, as a spy on its writes)."""
        try:
            with closing(sqlite3.connect(f"file:{self.root / 'mlflow.db'}?mode=ro", uri=True, timeout=1)) as db:
                return db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
        except sqlite3.OperationalError:  # locked mid-write: ask again
            return -1

    def restart(self) -> None:
        if self.process.poll() is None:
            stop_process_group(self.process)
        self.process = start_mlflow_server(self.root, self.port)


VERDICT_SHA = "0123456789abcdef"


@pytest.fixture(scope="module")
def logging_repo(tmp_path_factory):
    """Tiny data, two untrained models and their FINISHED training runs on a real server; four finished
    seed runs of one configuration for the verdict. Made in seconds, without training."""
    repo = copy_repo(tmp_path_factory.mktemp("logging"))
    repo.use_tiny_synthetic_data(train_size=300, test_size=200)
    repo.use_tiny_explain()
    repo.stage("download")
    server = KillableServer(tmp_path_factory.mktemp("logging-server"))
    client = MlflowClient(server.url)
    experiment = client.create_experiment("seecam")
    runs = {}
    for name, params in (("cnn", CnnParams()), ("se", SeParams())):
        save_model(repo.root / f"models/{name}.pt", build_model(name, params), model_config(name, params), [])
        runs[name] = client.create_run(experiment, run_name=name, tags={"model": name}).info.run_id
        client.set_terminated(runs[name], "FINISHED")
        info = {"run_id": runs[name], "experiment_id": experiment, "experiment": "seecam",
                "tracking_uri": server.url, "model_uri": ""}
        (repo.root / f"reports/train/{name}").mkdir(parents=True)
        (repo.root / f"reports/train/{name}/run.json").write_text(json.dumps(info))
        (repo.root / f"reports/train/{name}/history.csv").write_text(  # what train writes beside it
            "epoch,train_loss,train_acc,val_loss,val_acc,lr,epoch_seconds\n1,2.3,0.1,2.3,0.1,0.001,1.0\n")
        (repo.root / f"reports/train/{name}/iterations.csv").write_text("step,epoch,loss\n1,1,2.3\n")
    seeds = []
    evaluate = StageConfig.of("evaluate", load_params(repo.root / "params.yaml").evaluate, repo.root / "dvc.yaml")
    for seed, name in itertools.product((0, 1), ("cnn", "se")):
        run = client.create_run(experiment, tags={"model": name, "seed": str(seed), "config_sha": VERDICT_SHA})
        client.set_terminated(run.info.run_id, "FINISHED")
        record = client.create_run(experiment, tags={PARENT: run.info.run_id, STAGE: "evaluate",
                                                     "stage_config_sha": evaluate.sha})  # what evaluate keeps
        client.log_metric(record.info.run_id, "test_acc", 0.5 + seed / 10 + (name == "se") / 20)
        client.log_text(record.info.run_id, "1100", CORRECT_ARTIFACT)  # downloaded by the verdict
        client.set_terminated(record.info.run_id, "FINISHED")
        seeds.append(run.info.run_id)
    try:
        yield repo, server, {"evaluate": list(runs.values()), "explain": list(runs.values()), "verdict": seeds}
    finally:
        stop_process_group(server.process)


COMMANDS = {"evaluate": ("stages/evaluate.py",), "explain": ("stages/explain.py",),
            "verdict": ("-m", "seecam.cli", "verdict", "--config-sha", VERDICT_SHA)}
LOGGED = {"evaluate": "test_acc", "explain": "explain/deletion_auc"}


@pytest.mark.parametrize("stage", COMMANDS)
def test_server_dying_while_a_stage_logs_is_one_line_and_the_rerun_completes_the_same_runs(logging_repo, stage):
    repo, server, runs = logging_repo
    env = {"MLFLOW_TRACKING_URI": server.url, "PYTHONPATH": str(repo.root / "src")}
    before = server.metric_rows()
    process = repo.spawn(sys.executable, *COMMANDS[stage], **env)
    try:
        deadline = time.monotonic() + 300
        while server.metric_rows() <= before:  # the stage's first metric reached the store: kill the server now
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the stage logged nothing in 300 s"
            time.sleep(0.01)
        assert "rerun" in one_line_once_the_server_dies(process, server.process, server.url)
    finally:
        if process.poll() is None:
            stop_process_group(process, signal.SIGKILL)
        server.restart()
    client = MlflowClient(server.url)
    assert [client.get_run(run).info.status for run in runs[stage]] == ["FINISHED"] * len(runs[stage])

    rerun = repo.run(sys.executable, *COMMANDS[stage], **env)
    assert [client.get_run(run).info.status for run in runs[stage]] == ["FINISHED"] * len(runs[stage])
    if stage in LOGGED:  # each training run's one record of this stage, completed and FINISHED
        for run in runs[stage]:
            (record,) = records_of(client, run, stage)
            assert LOGGED[stage] in record.data.metrics and record.info.status == "FINISHED"
    else:
        verdict = json.loads((repo.root / "reports/verdict/verdict.json").read_text())
        assert client.get_run(verdict["mlflow_run_id"]).info.status == "FINISHED" and verdict["seeds"] == 2
        assert verdict["pooled_images"]["images"] == 4  # evaluate's artifacts were downloaded...
        assert "Downloading artifacts" not in rerun.stderr  # ...without MLflow's progress bars in the log
