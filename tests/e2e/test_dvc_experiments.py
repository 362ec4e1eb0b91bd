"""`dvc exp run --temp` runs stages in a temporary copy: MLflow must still log to the project's store. (Parallel
queue workers on one SQLite store: tests/e2e/seeds/test_verdict_seeds.py's sweep records every training once.)"""

from helpers import mlflow_client


def test_temp_experiment_logs_to_the_repo_root_store(repo_copy):
    repo_copy.use_tiny_synthetic_data(epochs=1)
    repo_copy.commit("baseline")
    repo_copy.dvc("exp", "run", "--temp", "-n", "tiny-cnn", "-S", "train.lr=0.002", "train_cnn")
    root = repo_copy.root
    client = mlflow_client(root)
    experiment = client.get_experiment_by_name("seecam")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["dvc_exp_name"] == "tiny-cnn" and run.data.params["train.lr"] == "0.002"
    assert run.info.artifact_uri.startswith((root / "mlartifacts").as_uri())
    assert "tiny-cnn" in repo_copy.dvc("exp", "list", "--name-only").stdout

