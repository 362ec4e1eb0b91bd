"""`dvc exp run --temp` runs stages in a temporary copy: MLflow must still log to the project's store."""

import time

from helpers import mlflow_client


def test_temp_experiment_logs_to_the_repo_root_store(repo_copy):
    repo_copy.use_tiny_synthetic_data(epochs=1)
    repo_copy.run("git", "add", "-A")
    repo_copy.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline")
    repo_copy.dvc("exp", "run", "--temp", "-n", "tiny-cnn", "-S", "train.lr=0.002", "train_cnn")
    root = repo_copy.root
    client = mlflow_client(root)
    experiment = client.get_experiment_by_name("seecam")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["dvc_exp_name"] == "tiny-cnn" and run.data.params["train.lr"] == "0.002"
    assert run.info.artifact_uri.startswith((root / "mlartifacts").as_uri())
    assert "tiny-cnn" in repo_copy.dvc("exp", "list", "--name-only").stdout


def test_parallel_queue_workers_on_sqlite_record_each_run_exactly_once(repo_copy):
    """Four queued experiments, two workers at once on one SQLite store: four runs per model, none lost or doubled."""
    repo_copy.use_tiny_synthetic_data(epochs=1, train_size=300, test_size=100)
    repo_copy.run("git", "add", "-A")
    repo_copy.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline")
    seeds = ["1", "2", "3", "4"]
    for seed in seeds:
        repo_copy.dvc("exp", "run", "--queue", "-n", f"seed-{seed}", "-S", f"seed={seed}", "train_cnn", "train_se")
    repo_copy.dvc("queue", "start", "-j", "2")
    try:
        deadline = time.monotonic() + 600
        while (status := repo_copy.dvc("queue", "status").stdout).count("Success") + status.count("Failed") < 4:
            assert time.monotonic() < deadline, status
            time.sleep(2)
    finally:
        repo_copy.dvc("queue", "stop", check=False)  # the workers exit once the queue is empty; make sure
    assert status.count("Success") == 4, status

    client = mlflow_client(repo_copy.root)
    runs = client.search_runs([client.get_experiment_by_name("seecam").experiment_id])
    recorded = sorted((r.data.tags["model"], r.data.params["seed"], r.info.status) for r in runs)
    assert recorded == sorted((m, s, "FINISHED") for m in ("cnn", "se") for s in seeds)
