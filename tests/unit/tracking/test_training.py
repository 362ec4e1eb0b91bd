"""The training run's keys: both models log the same params, and both runs of a seed share config_sha."""

from seecam.identity import Environment, config_sha, model_sha
from seecam.params import Params, parse_params
from seecam.tracking.training import run_params, run_tags

CPU = Environment("code1", "data1", "cpu", "2.14.1+cpu")


def test_both_models_log_the_same_param_keys():
    params = Params()
    cnn, se = run_params("cnn", params, 1), run_params("se", params, 2)
    assert cnn.keys() == se.keys()
    assert cnn["model.reduction"] == "none" and se["model.reduction"] == "16"
    assert cnn["train.lr"] == "0.001" and cnn["seed"] == "42"


def test_both_models_of_a_seed_share_config_sha_and_tag_the_seed_and_what_they_resolved():
    params = parse_params({"seed": 3})
    cnn, se = (run_tags(name, params, CPU, "val") for name in ("cnn", "se"))
    assert cnn["config_sha"] == se["config_sha"] == config_sha(params, CPU)
    assert (cnn["model_sha"], se["model_sha"]) == (model_sha("cnn", params), model_sha("se", params))
    assert cnn["seed"] == se["seed"] == "3"
    assert (cnn["device"], cnn["precision"], cnn["torch_version"]) == ("cpu", "fp32", "2.14.1+cpu")
    cuda = run_tags("cnn", params, Environment("code1", "data1", "cuda", "2.14.1+cu130"), "val")
    assert cuda["precision"] == "bf16" and cuda["config_sha"] != cnn["config_sha"]
