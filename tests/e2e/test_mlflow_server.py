"""Both training runs logged to a real `mlflow server` on 127.0.0.1; the logged model loads back and predicts."""

import json
import time
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow import MlflowClient

from helpers import LOG_DATASETS, OPEN_EXPERIMENT, at_once
from seecam.inference import load_model, predict_logits, to_device
from seecam.normalize import Normalizer


def test_runs_and_model_on_a_real_server(repo_copy, mlflow_server, tmp_path):
    repo_copy.use_tiny_synthetic_data(epochs=2)
    repo_copy.set_params(tracking__experiment="server-test")
    repo_copy.dvc("repro", "train_cnn", "train_se", MLFLOW_TRACKING_URI=mlflow_server.url)
    root = repo_copy.root
    assert not (root / "mlflow.db").exists()

    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name("server-test")
    runs = {r.data.tags["model"]: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"cnn", "se"}
    assert set(runs["cnn"].data.metrics) == set(runs["se"].data.metrics)
    assert runs["se"].data.params["model.reduction"] == "16"

    images = np.load(root / "data/cifar10/test_images.npy")[:16]
    for name in ("cnn", "se"):
        info = json.loads((root / f"reports/train/{name}/run.json").read_text())
        assert info["run_id"] == runs[name].info.run_id and info["tracking_uri"] == mlflow_server.url
        mlflow.set_tracking_uri(mlflow_server.url)
        served = mlflow.pytorch.load_model(info["model_uri"])
        ours, _ = load_model(root / f"models/{name}.pt", name)
        x = to_device(images, torch.device("cpu"))
        expected = predict_logits(ours, x)
        with torch.no_grad():
            logged = served(Normalizer(torch.device("cpu"), "cifar10")(x).contiguous())
        torch.testing.assert_close(logged, expected, atol=1e-4, rtol=1e-4)
        # given, not inferred (inference reloads the model in a subprocess: ~10 s of the stage's epilogue)
        # (the model's whole folder: a models:/<id>/<file> URI is read as a registered model's name)
        requirements = Path(mlflow.artifacts.download_artifacts(info["model_uri"], dst_path=str(tmp_path / name)),
                            "requirements.txt")
        assert sorted(requirements.read_text().split()) == sorted(
            [f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}",
             *mlflow.pytorch.get_default_pip_requirements()])


def test_workers_that_open_one_new_experiment_and_log_one_data_set_at_once_on_a_server_all_succeed(mlflow_server):
    """A sweep's queue workers on a tracking server (no file lock reaches it): one creates the experiment, the others
    find it; each records the data set, which the server's store holds once."""
    ids = at_once(OPEN_EXPERIMENT, [[mlflow_server.url, "race", "open"]] * 4)
    assert len(set(ids)) == 1
    at_once(LOG_DATASETS, [[mlflow_server.url, "race", "10", str(time.time() + 8)]] * 4)
    client = MlflowClient(mlflow_server.url)
    runs = client.search_runs([ids[0]])
    assert len(runs) == 4 and all(len(run.inputs.dataset_inputs) == 10 for run in runs)
    assert len({d.dataset.digest + d.dataset.name for run in runs for d in run.inputs.dataset_inputs}) == 10
