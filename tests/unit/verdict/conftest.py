"""The verdict tests' MLflow store: a fresh SQLite store with one experiment."""

import mlflow
import pytest

from seecam.params import parse_params


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("seecam", artifact_location=(tmp_path / "art").as_uri())
    return parse_params({"tracking": {"uri": uri}}), experiment
