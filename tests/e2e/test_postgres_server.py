"""A team's tracking server: `seecam server` on a real PostgreSQL (Debian's package, started here on 127.0.0.1)
with served artifacts; two seeds of the pipeline (one up to evaluate, one in full) log to it, the models load
back from it, the verdict pools them, and no password shows up in anything seecam prints, writes or logs.

Outside CI the tests skip when PostgreSQL or its driver is missing; under CI they must run.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from helpers import REPO, free_port, records_of, stop_process_group, tool_env, wait_until_answering
from seecam.inference import load_model, predict_logits, to_device
from seecam.normalize import Normalizer

DB_USER, DB_PASSWORD, DB_NAME = "mlflow", "pg-s3cret-7f3a", "mlflow"
HTTP_USER, HTTP_PASSWORD = "alice", "http-s3cret-91c2"  # basic auth in MLFLOW_TRACKING_URI (this server ignores it)
SECRETS = (DB_PASSWORD, HTTP_PASSWORD)


@dataclass
class Postgres:
    uri: str
    root: Path


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is missing under CI: .ci/run must install the Debian postgresql package")
        pytest.skip("PostgreSQL not installed (apt-get install postgresql); server tests skipped")
    if not os.environ.get("CI"):
        pytest.importorskip("psycopg", reason="the test extra's psycopg[binary] drives postgresql://")
    return Path(found[-1]).parent


def _as_postgres_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user the Debian package creates."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (password auth), its socket in its own temp directory."""
    bin_dir = _postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="seecam-pg-"))  # not under pytest's root-only 0700 tmp tree
    (root / "pwfile").write_text(DB_PASSWORD)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pwfile", "postgres")
    port = free_port()

    def pg(*argv: str) -> None:
        subprocess.run(_as_postgres_user([str(bin_dir / argv[0]), *argv[1:]]), check=True, capture_output=True,
                       timeout=120, env=tool_env(PGPASSWORD=DB_PASSWORD))

    pg("initdb", "-D", str(root / "data"), "-U", DB_USER, "--pwfile", str(root / "pwfile"),
       "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8")
    pg("pg_ctl", "-D", str(root / "data"), "-l", str(root / "postgres.log"), "-w", "-t", "60", "start",
       "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1")
    try:
        pg("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", DB_USER, DB_NAME)
        yield Postgres(f"postgresql://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{port}/{DB_NAME}", root)
    finally:
        pg("pg_ctl", "-D", str(root / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class TeamServer:
    url: str
    artifacts: Path
    log: Path


@pytest.fixture(scope="session")
def team_server(postgres, tmp_path_factory) -> Iterator[TeamServer]:
    """`seecam server` on the PostgreSQL store, artifacts served from a temp directory; waits until healthy."""
    root = tmp_path_factory.mktemp("team-server")
    port = free_port()
    log = root / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "seecam.cli", "server", "--backend-store-uri", postgres.uri,
             "--artifacts-destination", str(root / "artifacts"), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=tool_env(PYTHONPATH=_pythonpath()), start_new_session=True)
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/health", process, log=log)
        yield TeamServer(f"http://127.0.0.1:{port}", root / "artifacts", log)
    finally:
        stop_process_group(process)


def _pythonpath() -> str:
    """This checkout's src first (the venv may hold another checkout's editable install)."""
    return os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))


def test_two_seeds_on_a_postgres_backed_server_load_back_and_give_a_verdict(postgres, team_server, repo_copy):
    repo = repo_copy
    repo.use_tiny_synthetic_data(epochs=1, train_size=400, test_size=120)
    # params.yaml names the server; the password comes from the environment (params.yaml refuses one)
    with_password = team_server.url.replace("http://", f"http://{HTTP_USER}:{HTTP_PASSWORD}@")
    repo.use_tiny_explain()
    repo.set_params(tracking__uri=team_server.url, tracking__experiment="team")
    outputs = [team_server.log.read_text()]
    for seed, target in ((1, "evaluate"), (0, "report")):  # seed 1 up to what the verdict pools; seed 0 in full
        repo.set_params(seed=seed)
        done = repo.dvc("repro", target, MLFLOW_TRACKING_URI=with_password)
        outputs += [done.stdout, done.stderr]
    assert not (repo.root / "mlflow.db").exists() and not (repo.root / "mlartifacts").exists()

    client = MlflowClient(team_server.url)
    experiment = client.get_experiment_by_name("team")
    runs = client.search_runs([experiment.experiment_id])
    trainings = [r for r in runs if "seecam.stage" not in r.data.tags]  # the others are their stages' records
    assert sorted((r.data.tags["model"], r.data.tags["seed"]) for r in trainings) == [
        ("cnn", "0"), ("cnn", "1"), ("se", "0"), ("se", "1")]
    assert sorted(r.data.tags["seecam.stage"] for r in runs if r not in trainings) == [
        stage for stage, count in (("evaluate", 4), ("explain", 2), ("report", 2)) for _ in range(count)]
    test_images = np.load(repo.root / "data/cifar10/test_images.npy")[:16]
    x = to_device(test_images, torch.device("cpu"))
    mlflow.set_tracking_uri(team_server.url)
    for name in ("cnn", "se"):
        info = json.loads((repo.root / f"reports/train/{name}/run.json").read_text())
        assert info["tracking_uri"] == team_server.url  # credentials went to MLFLOW_TRACKING_USERNAME/PASSWORD
        assert client.get_run(info["run_id"]).data.tags["seed"] == "0"
        (evaluated,), (explained,) = (records_of(client, info["run_id"], stage) for stage in ("evaluate", "explain"))
        assert "test_acc" in evaluated.data.metrics and any(k.startswith("explain/") for k in explained.data.metrics)
        served = mlflow.pytorch.load_model(info["model_uri"])
        ours, _ = load_model(repo.root / f"models/{name}.pt", name)
        with torch.no_grad():
            logged = served(Normalizer(torch.device("cpu"), "cifar10")(x).contiguous())
        torch.testing.assert_close(logged, predict_logits(ours, x), atol=1e-4, rtol=1e-4)
    assert any(team_server.artifacts.rglob("MLmodel"))  # artifacts went through the server, not the client
    assert _postgres_run_count(postgres.uri) == 12  # the runs and their records live in PostgreSQL itself

    verdict = repo.run(sys.executable, "-m", "seecam.cli", "verdict", PYTHONPATH=str(repo.root / "src"),
                       MLFLOW_TRACKING_URI=with_password)
    outputs += [verdict.stdout, verdict.stderr]
    result = json.loads((repo.root / "reports/verdict/verdict.json").read_text())
    assert result["seeds"] == 2 and result["mlflow_run_id"] in verdict.stdout

    assert f"postgresql://{DB_USER}:***@127.0.0.1" in outputs[0]  # the printed `mlflow server` command
    recorded = [p.read_text(errors="replace") for p in [*(repo.root / "reports").rglob("*"), repo.root / "dvc.lock"]
                if p.is_file()]
    logged = [json.dumps([r.data.tags, r.data.params]) for r in client.search_runs([experiment.experiment_id])]
    for secret in SECRETS:
        for text in outputs + recorded + logged:
            assert secret not in text


def _postgres_run_count(uri: str) -> int:
    import psycopg

    with psycopg.connect(uri) as connection:
        return connection.execute("SELECT count(*) FROM runs").fetchone()[0]
