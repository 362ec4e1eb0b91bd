"""`seecam sweep` on DVC's real queue: one experiment per seed, both models trained and tracked in each."""

import sys

import pytest
from mlflow import MlflowClient

pytestmark = pytest.mark.e2e


def test_sweep_runs_one_experiment_per_seed_and_tracks_both_models(repo_copy):
    repo_copy.use_tiny_synthetic_data(epochs=1, train_size=300, test_size=100)
    repo_copy.set_params(evaluate__bootstrap_samples=100, evaluate__latency_repeats=2)
    sweep = (sys.executable, "-m", "seecam.cli", "sweep", "--seeds", "0-1", "-S", "train.lr=0.002")
    src = str(repo_copy.root / "src")
    refused = repo_copy.run(*sweep, check=False, PYTHONPATH=src)
    assert refused.returncode == 2 and "no git commit, and dvc exp needs one" in refused.stderr
    repo_copy.run("git", "add", "-A")
    repo_copy.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline")

    done = repo_copy.run(*sweep, "--run", "-j", "2", "evaluate", PYTHONPATH=src, timeout=900)
    assert "all 2 experiments succeeded; next: `seecam verdict`" in done.stdout, done.stdout
    names = [line for line in repo_copy.dvc("exp", "list", "--name-only").stdout.split() if line.startswith("seed-")]
    assert sorted(name.rsplit("-", 1)[0] for name in names) == ["seed-0", "seed-1"]

    client = MlflowClient(f"sqlite:///{repo_copy.root}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("seecam").experiment_id])
    recorded = sorted((r.data.tags["model"], r.data.params["seed"], r.data.params["train.lr"], r.info.status,
                       "test_acc" in r.data.metrics) for r in runs)
    assert recorded == sorted((m, s, "0.002", "FINISHED", True) for m in ("cnn", "se") for s in ("0", "1"))
    assert {r.data.tags["dvc_exp_name"] for r in runs} == set(names)
