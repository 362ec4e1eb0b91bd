import time

import pytest

from conftest import free_port
from seecam.errors import SeecamError
from seecam.params import Params, TrackingParams
from seecam.tracking import check_reachable, run_params, tracking_uri


def test_uri_precedence_env_then_param_then_dvc_root(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert tracking_uri(TrackingParams()) == f"sqlite:///{tmp_path}/mlflow.db"
    assert tracking_uri(TrackingParams(uri="http://host:5000")) == "http://host:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert tracking_uri(TrackingParams(uri="http://host:5000")) == "http://env:5000"


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


def test_both_models_log_the_same_param_keys():
    params = Params()
    cnn, se = run_params("cnn", params, 1), run_params("se", params, 2)
    assert cnn.keys() == se.keys()
    assert cnn["model.reduction"] == "none" and se["model.reduction"] == "16"
    assert cnn["train.lr"] == "0.001" and cnn["seed"] == "42"
