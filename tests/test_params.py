import subprocess
import sys

import pytest

from conftest import REPO
from seecam.errors import SeecamError
from seecam.params import Params, flatten, load_params, parse_params


def test_repo_params_are_the_tutorial_defaults():
    params = load_params(REPO / "params.yaml")
    assert params == Params()
    assert (params.train.epochs, params.train.batch_size, params.train.lr) == (50, 64, 0.001)
    assert (params.train.lr_patience, params.train.lr_factor) == (3, 0.5)
    assert params.models.cnn.channels == [32, 64, 128] and params.models.se.reduction == 16


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"train": {"lrr": 0.1}}, "unknown key 'train.lrr' (allowed: epochs, batch_size, lr,"),
        ({"models": {"resnet": {}}}, "unknown key 'models.resnet' (allowed: cnn, se)"),
        ({"train": {"lr": -0.1}}, "train.lr must be > 0, got -0.1"),
        ({"train": {"epochs": "ten"}}, "train.epochs must be an integer, got 'ten'"),
        ({"train": {"epochs": 2.5}}, "train.epochs must be an integer, got 2.5"),
        ({"data": {"source": "imagenet"}}, "data.source must be one of cifar10, synthetic, got 'imagenet'"),
        ({"data": {"val_size": 50000}}, "data.val_size must be smaller than the 50000 train images"),
        ({"data": {"source": "synthetic", "val_size": 10, "synthetic": {"train_size": 10}}},
         "data.val_size must be smaller than the 10 train images"),
        ({"data": {"subset": 49500, "val_size": 1000}}, "data.subset must be <= the 49000 train images left"),
        ({"data": {"md5": "xyz"}}, "data.md5 must be 32 hex digits"),
        ({"models": {"se": {"reduction": 64}}}, "models.se.reduction must be <= the narrowest block (32)"),
        ({"models": {"cnn": {"channels": [32, "x"]}}}, "models.cnn.channels[1] must be an integer"),
        ({"train": {"device": "tpu"}}, "train.device must be one of auto, cpu, cuda, mps"),
        ({"explain": {"images": []}}, "explain.images must be a non-empty list"),
        ({"train": 5}, "train must be a mapping of keys, got int"),
    ],
)
def test_bad_params_name_the_key_and_what_is_allowed(raw, message):
    with pytest.raises(SeecamError) as info:
        parse_params(raw, source="params.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("params.yaml: ")
    assert "\n" not in str(info.value)


def test_yaml11_exponent_floats_are_accepted():
    # PyYAML reads 1e-4 as a string; DVC's `-S train.lr=1e-4` writes exactly that.
    assert parse_params({"train": {"lr": "1e-4"}}).train.lr == pytest.approx(1e-4)


def test_flatten_gives_dotted_keys():
    flat = flatten(Params().train)
    assert flat["lr"] == 0.001 and flat["augment.hue"] == 0.1


def test_stage_exits_2_with_one_line_before_any_work(tmp_path):
    (tmp_path / "params.yaml").write_text("train:\n  lr: -1\n")
    result = subprocess.run(
        [sys.executable, str(REPO / "stages/download.py")], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr == "error: params.yaml: train.lr must be > 0, got -1.0\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
