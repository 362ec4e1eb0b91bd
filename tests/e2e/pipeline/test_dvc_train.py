"""Real `dvc repro` of both training stages on tiny synthetic data, logging to the project's SQLite store."""

import json
import re

import torch

from helpers import free_port, mlflow_client

EPOCH_METRICS = {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_seconds"}


def test_repro_trains_both_models_side_by_side_and_only_changed_stages_rerun(pipeline_repo, trained_copy):
    """The shared pipeline's training (3 epochs), then, in a copy, a change that retrains one model, a typo and
    reverts that retrain none."""
    trained = pipeline_repo.repro_log
    root = trained_copy.root
    assert "se: compile off (auto: a compiled step is no faster on cpu (measured))" in trained
    # the stage log ends with where its time went
    assert re.search(r"^cnn: startup \d+\.\d s, compile 0\.0 s, epochs \d+\.\d s, outputs \d+\.\d s$", trained, re.M)

    runs = {}
    for name in ("cnn", "se"):
        payload = torch.load(root / f"models/{name}.pt", weights_only=True)
        assert payload["config"]["name"] == name and "block1.conv.weight" in payload["state_dict"]
        history = (root / f"reports/train/{name}/history.csv").read_text().splitlines()
        assert history[0] == "epoch,train_loss,train_acc,val_loss,val_acc,lr,epoch_seconds" and len(history) == 4
        assert (root / f"reports/train/{name}/iterations.csv").read_text().startswith("step,epoch,loss\n")
        runs[name] = json.loads((root / f"reports/train/{name}/run.json").read_text())
        assert runs[name]["tracking_uri"] == ""  # this repo's store, in any clone

    client = mlflow_client(root)
    cnn, se = (client.get_run(runs[name]["run_id"]) for name in ("cnn", "se"))
    assert cnn.info.experiment_id == se.info.experiment_id
    assert set(cnn.data.metrics) == set(se.data.metrics) and set(cnn.data.metrics) >= EPOCH_METRICS
    assert cnn.data.params.keys() == se.data.params.keys()
    assert (cnn.data.tags["model"], se.data.tags["model"]) == ("cnn", "se")
    assert (cnn.info.run_name, se.info.run_name) == ("cnn · seed 42", "se · seed 42")  # a sweep's runs differ
    assert cnn.data.tags["dvc_stage"] == "train_cnn" and len(cnn.data.tags["data_sha256"]) == 64
    assert cnn.data.tags["device"] == "cpu"
    assert (se.data.params["train.compile"], se.data.params["compiled"]) == ("auto", "false")
    assert se.data.params["compile_reason"] == "auto: a compiled step is no faster on cpu (measured)"
    assert [m.step for m in client.get_metric_history(se.info.run_id, "val_acc")] == [1, 2, 3]
    assert se.inputs.dataset_inputs[0].dataset.name == "synthetic-train"
    assert not list(root.glob("**/mlruns"))  # artifacts went to the anchored mlartifacts/


    trained_copy.set_params(models__se__reduction=8)
    rerun = trained_copy.dvc("repro", "train_cnn", "train_se").stdout
    assert "Running stage 'train_se'" in rerun
    assert "Running stage 'train_cnn'" not in rerun and "Running stage 'download'" not in rerun
    assert_mistakes_retrain_nothing(trained_copy, client, runs["se"]["run_id"])


def assert_mistakes_retrain_nothing(repo, client, first_se_run):
    """A params typo (DVC deletes the stage's outputs before the script refuses it) and a revert: DVC's run
    cache restores the trained outputs in seconds; no epoch is trained and no MLflow run is made."""
    root = repo.root
    cnn_outputs = [root / "models/cnn.pt", *sorted(root.glob("reports/train/cnn/*"))]
    trained = {path: path.read_bytes() for path in cnn_outputs}
    experiment = client.get_experiment_by_name("seecam").experiment_id
    runs_before = len(client.search_runs([experiment]))
    good = (root / "params.yaml").read_text()
    repo.set_params(train__epoch=3)
    typo = repo.dvc("repro", "train_cnn", check=False)
    assert typo.returncode != 0 and "unknown key 'train.epoch'" in typo.stderr + typo.stdout
    assert not (root / "models/cnn.pt").exists()  # DVC removed the outputs before the stage ran
    (root / "params.yaml").write_text(good)
    fixed = repo.dvc("repro", "train_cnn", "train_se")
    assert "Stage 'train_cnn' is cached - skipping run, checking out outputs" in fixed.stdout, fixed.stdout
    assert {path: path.read_bytes() for path in cnn_outputs} == trained
    repo.set_params(models__se__reduction=16)  # back to the first configuration, trained before
    reverted = repo.dvc("repro", "train_cnn", "train_se")
    assert "Stage 'train_se' is cached - skipping run, checking out outputs" in reverted.stdout, reverted.stdout
    assert json.loads((root / "reports/train/se/run.json").read_text())["run_id"] == first_se_run
    for log in (fixed, reverted):
        assert "epoch 1/" not in log.stdout + log.stderr and "Running stage" not in log.stdout
    assert len(client.search_runs([experiment])) == runs_before


def test_unreachable_tracking_server_fails_before_training(repo_copy):
    repo_copy.use_tiny_synthetic_data()
    repo_copy.stage("download")
    uri = f"http://127.0.0.1:{free_port()}"
    failed = repo_copy.stage("train", "cnn", check=False, MLFLOW_TRACKING_URI=uri)
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines()[-1].startswith(f"error: MLflow tracking server {uri} is unreachable")
    assert not (repo_copy.root / "models").exists() and not (repo_copy.root / "checkpoints").exists()
