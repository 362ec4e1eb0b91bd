import os
import re
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import GIT_IDENTITY, REPO
from seecam.augment import Augmenter
from seecam.config_loader import flatten
from seecam.errors import SeecamError
from seecam.models import build_model, count_parameters
from seecam.params import (
    IMAGE_SIDE,
    MAX_HIDDEN,
    SEED_MAX,
    EcaParams,
    Params,
    SeParams,
    check_tracking_uri,
    explainable_layers,
    load_params,
    parse_params,
)
from seecam.training_loop import seed_everything

CPU = torch.device("cpu")


def two(**blocks: dict) -> dict:
    """The card's two models' blocks in params.yaml, with some keys of `blocks` (name -> keys) changed."""
    return {name: {"kind": name} | blocks.get(name, {}) for name in ("cnn", "se")}


def test_repo_params_are_the_tutorial_defaults():
    params = load_params(REPO / "params.yaml")
    assert params == Params()
    assert (params.train.epochs, params.train.batch_size, params.train.lr) == (50, 64, 0.001)
    assert (params.train.lr_patience, params.train.lr_factor) == (3, 0.5)
    assert params.model("cnn").channels == [32, 64, 128] and params.model("se").reduction == 16
    assert list(params.models) == ["cnn", "se"] and params.candidates == ["se"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"train": {"lrr": 0.1}}, "unknown key 'train.lrr' (allowed: epochs, batch_size, lr,"),
        ({"models": {"cnn": {"kind": "resnet"}}}, "models.cnn.kind must be one of cnn, se, eca, got 'resnet'"),
        ({"train": {"lr": -0.1}}, "train.lr must be > 0, got -0.1"),
        ({"train": {"epochs": "ten"}}, "train.epochs must be an integer, got 'ten'"),
        ({"train": {"epochs": 2.5}}, "train.epochs must be an integer, got 2.5"),
        ({"data": {"source": "imagenet"}}, "data.source must be one of cifar10, synthetic, got 'imagenet'"),
        ({"data": {"val_size": 50000}}, "data.val_size must be smaller than the 50000 train images"),
        ({"data": {"source": "synthetic", "val_size": 10, "synthetic": {"train_size": 10}}},
         "data.val_size must be smaller than the 10 train images"),
        ({"data": {"subset": 49500, "val_size": 1000}}, "data.subset must be <= the 49000 train images left"),
        ({"data": {"md5": "xyz"}}, "data.md5 must be 32 hex digits"),
        ({"models": two(se={"reduction": 64})}, "models.se.reduction must be <= the narrowest block (32)"),
        ({"models": two(cnn={"channels": [32, "x"]})}, "models.cnn.channels[1] must be an integer"),
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


# Issue #9: each of these validated and then crashed (or ran for ever) in a stage.
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"seed": -1}, "seed must be >= 0, got -1"),
        ({"seed": 10**20}, "seed must be <= 4,294,967,295 (numpy seeds are 0..2**32-1)"),
        ({"train": {"lr": float("nan")}}, "train.lr must be a finite number, got nan"),
        ({"train": {"lr": "nan"}}, "train.lr must be a finite number, got nan"),
        ({"train": {"weight_decay": float("nan")}}, "train.weight_decay must be a finite number, got nan"),
        ({"train": {"lr": 10**400}}, "train.lr must be a finite number, got 1000"),
        ({"data": {"timeout_seconds": float("inf")}}, "data.timeout_seconds must be a finite number, got inf"),
        ({"data": {"timeout_seconds": 86400}}, "data.timeout_seconds must be <= 3,600.0 (a server silent"),
        ({"data": {"retries": 1000}}, "data.retries must be <= 10 (the wait doubles per retry"),
        ({"data": {"deadline_seconds": 0}}, "data.deadline_seconds must be > 0, got 0"),
        ({"data": {"deadline_seconds": 10**6}}, "data.deadline_seconds must be <= 86,400.0 (a day: on a slower"),
        ({"data": {"min_bytes_per_second": -1}}, "data.min_bytes_per_second must be >= 0 (0 = no minimum), got -1"),
        ({"data": {"min_bytes_per_second": 10**10}}, "data.min_bytes_per_second must be <= 1,000,000,000 (1 GB/s"),
        ({"data": {"stall_seconds": 0}}, "data.stall_seconds must be > 0, got 0"),
        ({"data": {"stall_seconds": 7200}}, "data.stall_seconds must be <= data.deadline_seconds (3,600 s: a longer"),
        ({"data": {"url": "ftp://example.org/c.tar.gz"}}, "data.url must be an http(s)://host/... or file:// URL"),
        ({"data": {"url": "https:///c.tar.gz"}}, "data.url must be an http(s)://host/... or file:// URL"),
        ({"train": {"augment": {"crop_padding": 100000}}},
         "train.augment.crop_padding must be <= 32 (the 32x32 image's side"),
        ({"models": two(cnn={"hidden": 10**9})}, "models.cnn.hidden must be <= 16,384"),
        ({"models": two(se={"channels": [10**6]})}, "models.se.channels must be widths <= 4,096"),
        ({"models": two(cnn={"channels": [4096], "hidden": 16384})},
         "models.cnn must have <= 100,000,000 weights (400 MB of float32"),
        ({"tracking": {"uri": "notascheme"}}, "tracking.uri must be '' (the project's store) or a URI MLflow"),
        ({"tracking": {"uri": "ftp://host/x"}}, "http(s)://, sqlite:///, postgresql[+driver]://"),
        ({"tracking": {"uri": "http://a:s3cret@h:5000"}}, r"tracking.uri holds a password (http://a:***@h:5000), "
         "which DVC copies into dvc.lock"),
        ({"tracking": {"experiment": "a\nb"}}, "tracking.experiment must be a non-empty name on one line"),
        ({"tracking": {"experiment": "x" * 501}}, "tracking.experiment must be <= 500 characters (MLflow's limit)"),
        ({"data": {"synthetic": {"train_size": 10**9}}}, "data.synthetic.train_size must be <= 100,000"),
        ({"data": {"synthetic": {"seed": -3}}}, "data.synthetic.seed must be >= 0"),
        ({"data": {"split_seed": -1}}, "data.split_seed must be >= 0"),
        ({"data": {"split_seed": 2**32}}, "data.split_seed must be <= 4,294,967,295 (numpy seeds are 0..2**32-1)"),
        ({"explain": {"layer": "head.fc2"}}, "explain.layer 'head.fc2' must be a feature-map (4-D) layer of both"),
        ({"explain": {"layer": "block3.se"}}, "explain.layer 'block3.se' exists only in se; it must be a feature-map "
                                              "(4-D) layer of both models"),
        ({"explain": {"layer": "block2.eca"}, "models": two() | {"eca": {"kind": "eca"}}},
         "explain.layer 'block2.eca' exists only in eca; it must be a feature-map (4-D) layer of all models"),
        ({"explain": {"layer": "block3"}, "models": two(cnn={"channels": [32, 64]})},
         "layer of both models: block1, block1.conv, block1.bn, block1.relu, block1.pool, block2, "),
        ({"explain": {"images": list(range(65))}}, "explain.images must list <= 64 images"),
        ({"evaluate": {"bootstrap_samples": 10**12}}, "evaluate.bootstrap_samples must be <= 100,000"),
        ({"evaluate": {"timing_rounds": 1}}, "evaluate.timing_rounds must be >= 3 (fewer rounds give no range"),
        ({"evaluate": {"baseline": "resnet"}}, "evaluate.baseline must be one of models: cnn, se, got 'resnet'"),
        ({"evaluate": {"bootstrap_seed": 2**32}}, "evaluate.bootstrap_seed must be <= 4,294,967,295"),
        ({"explain": {"deletion_steps": 10**6}}, "explain.deletion_steps must be <= 1,024 (one step per pixel"),
        ({"train": {"epochs": 10**12}}, "train.epochs must be <= 10,000"),
        ({"train": {"batch_size": 10**7}}, "train.batch_size must be <= 10,000 (the whole CIFAR-10 test set"),
        ({1: {}}, "unknown key '1' (allowed: seed, data,"),
        ({"train": {None: 1, "x\ny": 2}}, "unknown key 'train.None'"),
        ({"data": {"url": "ftp://" + "x" * 10_000}}, "... (10,006 characters)"),
    ],
)
def test_params_that_used_to_crash_are_refused_naming_the_key(raw, message):
    with pytest.raises(SeecamError) as info:
        parse_params(raw, source="params.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("params.yaml: ")
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize("uri", [
    "", "http://127.0.0.1:5000", "https://mlflow.example.org", "sqlite:////tmp/mlflow.db", "sqlite:///mlflow.db",
    "postgresql://user@db/mlflow", "postgresql+psycopg2://db/mlflow", "mysql+pymysql://db/m", "mssql://db/m",
    "file:///tmp/mlruns", "databricks", "databricks://profile",
])
def test_tracking_uris_mlflow_can_use_are_accepted(uri):
    check_tracking_uri(uri, "MLFLOW_TRACKING_URI")
    assert parse_params({"tracking": {"uri": uri}}).tracking.uri == uri


@pytest.mark.parametrize("uri", ["notascheme", "ftp://host/x", "http://", "sqlite://", "mlruns", "s3://bucket/x",
                                 "http://host/\n", "databricksfoo", " http://host"])
def test_other_tracking_uris_are_refused_with_the_allowed_list(uri):
    with pytest.raises(SeecamError, match=r"^MLFLOW_TRACKING_URI must be '' \(the project's store\) or a URI MLflow "
                                          r"can track to: http\(s\)://, sqlite:///, .*databricks; got "):
        check_tracking_uri(uri, "MLFLOW_TRACKING_URI")


def feature_map_layers(model: torch.nn.Module) -> set[str]:
    """Names of the modules whose forward output is 4-D, found by running the model with hooks."""
    found: set[str] = set()
    handles = [module.register_forward_hook(lambda _m, _i, out, name=name: found.add(name) if out.dim() == 4 else None)
               for name, module in model.named_modules() if name]
    with torch.no_grad():
        model.eval()(torch.zeros(2, 3, 32, 32))
    for handle in handles:
        handle.remove()
    return found


@pytest.mark.parametrize(("cnn_channels", "se_channels"), [([32, 64, 128], [32, 64, 128]), ([16, 32], [16, 32, 64]),
                                                           ([16, 16, 16, 16, 16], [32])])
def test_explainable_layers_are_the_4d_layers_of_both_models(cnn_channels, se_channels):
    raw = {"models": two(cnn={"channels": cnn_channels}, se={"channels": se_channels, "reduction": 4})}
    params = parse_params({**raw, "explain": {"layer": "block1"}})
    both = feature_map_layers(build_model("cnn", params.model("cnn"))) & feature_map_layers(
        build_model("se", params.model("se")))
    expected = explainable_layers(min(len(cnn_channels), len(se_channels)))
    assert set(expected) == both and len(expected) == len(both)
    for layer in expected:
        assert parse_params({**raw, "explain": {"layer": layer}}).explain.layer == layer


def alias_bomb(depth: int) -> str:
    """A billion laughs as one flow list: nine aliases per level, 9**depth strings once expanded (~700 bytes)."""
    levels = ["&x0 [a, a, a, a, a, a, a, a, a]"]
    levels += [f"&x{i} [{', '.join([f'*x{i - 1}'] * 9)}]" for i in range(1, depth + 1)]
    return f"[{', '.join(levels)}]"


def test_a_yaml_alias_bomb_under_any_key_is_refused_in_one_line_fast_and_small(tmp_path):
    """Aliases are refused as they are read, before anything is built or shown: at depth 9 under a real key
    (tracking.experiment) this took 49 s and 4.4 GB at depth 8, and died of a MemoryError in repr at depth 9.
    (DVC's own parser, reading params.yaml for `dvc status`/`dvc repro`, expands it and hangs: not ours, as
    docs/guarantees.md says.)"""
    path = tmp_path / "params.yaml"
    path.write_text(f"seed: 1\ntracking:\n  experiment: {alias_bomb(9)}\n")
    tracemalloc.start()
    began = time.monotonic()
    try:
        with pytest.raises(SeecamError) as info:
            load_params(path)
        seconds = time.monotonic() - began
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(info.value) == (f"{path}: line 3: YAML alias *x0 refused (aliases can expand a small file to "
                               "gigabytes); write the value out")
    assert seconds < 1 and peak < 5_000_000


def test_duplicate_keys_are_refused_as_dvc_refuses_them(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\ntrain:\n  epochs: 1\n  lr: 0.01\n  epochs: 7\n")
    with pytest.raises(SeecamError) as info:
        load_params(path)
    assert str(info.value) == f"{path}: line 5: duplicate key 'epochs' (DVC refuses it too); keep one"


@pytest.mark.parametrize(("value", "message"), [
    ("1" * 5000, f"line 1: cannot read '{'1' * 60}'... (5,000 characters): Exceeds the limit (4300 digits) for "
                 "integer string conversion"),
    ("2024-13-01", "line 1: cannot read '2024-13-01': month must be in 1..12"),
])
def test_values_yaml_cannot_build_are_one_line(tmp_path, value, message):
    path = tmp_path / "params.yaml"
    path.write_text(f"seed: {value}\n")
    with pytest.raises(SeecamError) as info:
        load_params(path)
    assert str(info.value).startswith(f"{path}: {message}") and len(str(info.value)) - len(str(path)) < 200


def test_a_huge_value_is_echoed_in_a_short_line():
    """explain.layer's message echoed the whole value: one line of 1,048,836 characters for a 1 MiB layer."""
    with pytest.raises(SeecamError) as info:
        parse_params({"explain": {"layer": "a" * 2**20}}, source="params.yaml")
    message = str(info.value)
    assert message.startswith("params.yaml: explain.layer 'aaaa") and "(1,048,576 characters)" in message
    assert len(message) < 400


def test_values_at_the_upper_bounds_work():
    top = parse_params({"seed": SEED_MAX, "models": two(cnn={"hidden": MAX_HIDDEN}),
                        "train": {"augment": {"crop_padding": IMAGE_SIDE}}})
    seed_everything(top.seed)  # numpy and torch both take the largest seed
    assert np.random.default_rng(top.seed).integers(10) >= 0
    model = build_model("cnn", top.model("cnn"))
    assert model.head.fc1.out_features == MAX_HIDDEN and count_parameters(model) == top.model("cnn").weights()
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    out = Augmenter(top.train.augment, CPU)(images, torch.Generator().manual_seed(top.seed))
    assert out.shape == (8, 3, 32, 32) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["cnn", "se", "eca"])
def test_weight_count_matches_the_built_model(name):
    extra = {"se": {"reduction": 4}, "eca": {"gamma": 1.5, "b": 2}}.get(name, {})
    block = {"kind": name, "channels": [8, 24, 40, 16], "hidden": 33, **extra}
    params = parse_params({"models": {"base": {"kind": "cnn"}, name: block}, "evaluate": {"baseline": "base"},
                           "explain": {"layer": "block1"}}).model(name)
    assert params.weights() == count_parameters(build_model(name, params))


def test_an_emptied_params_file_is_restored_by_the_command_its_line_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    shutil.copy(REPO / "params.yaml", "params.yaml")
    subprocess.run(["git", "add", "params.yaml"], check=True)
    subprocess.run(["git", "commit", "-qm", "params"], check=True, env=os.environ | GIT_IDENTITY)
    Path("params.yaml").write_text("")
    with pytest.raises(SeecamError) as info:
        load_params("params.yaml")
    [command] = re.findall(r"\((git [^)]+)\)", str(info.value))
    subprocess.run(["bash", "-c", command], check=True)
    assert load_params("params.yaml") == load_params(REPO / "params.yaml")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"seed: 1\ntrain:\n  device: caf\xe9\n", "params.yaml: not UTF-8 text (b'\\xe9' on line 3); save it as UTF-8"),
        (b"", "params.yaml: has no keys; restore it (git checkout params.yaml) or set the keys you want"),
        (b"# only a comment\n", "params.yaml: has no keys"),
        (b"- seed\n- 1\n", "params.yaml: the top level must be a mapping of keys, got list"),
        (b"just text\n", "params.yaml: the top level must be a mapping of keys, got str"),
        (b"seed: [1\n", "params.yaml: not valid YAML (while parsing a flow sequence)"),
        (b"seed: \x00\n", "params.yaml: not valid YAML (unacceptable character #x0000"),
        (b"seed: " + b"[" * 5000 + b"]" * 5000 + b"\n", "params.yaml: nested too deeply to be params"),
    ],
)
def test_unreadable_params_files_are_one_line(tmp_path, monkeypatch, content, message):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_bytes(content)
    with pytest.raises(SeecamError) as info:
        load_params("params.yaml")
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_a_model_variant_is_a_params_block_with_a_kind():
    """Issue 25: a model is data. A variant of a kind is a `models.<name>` block; no code names it."""
    params = parse_params({"models": {"cnn": {"kind": "cnn"}, "se": {"kind": "se"},
                                      "se8": {"kind": "se", "reduction": 8}, "eca": {"kind": "eca"}}})
    assert list(params.models) == ["cnn", "se", "se8", "eca"]
    assert params.model("se8") == SeParams(reduction=8) and params.model("eca") == EcaParams()
    assert params.candidates == ["se", "se8", "eca"]  # every model but evaluate.baseline, in params.yaml's order


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ({"cnn": {"kind": "cnn"}, "se8": {"reduction": 8}}, "models.se8.kind is missing: one of cnn, se, eca"),
        ({"cnn": {"kind": "cnn"}, "se8": {"kind": "resnet"}}, "models.se8.kind must be one of cnn, se, eca, "
                                                               "got 'resnet'"),
        ({"cnn": {"kind": "cnn"}, "se8": {"kind": "cnn", "reduction": 8}},
         "unknown key 'models.se8.reduction' (allowed: channels, hidden, dropout)"),
        ({"cnn": {"kind": "cnn"}, "SE 8": {"kind": "se"}}, "models has a model named 'SE 8': a name is lowercase "
                                                           "letters, digits and _, starting with a letter"),
        ({"cnn": {"kind": "cnn"}, "x" * 33: {"kind": "se"}}, "at most 32 characters"),
        ({"cnn": {"kind": "cnn"}, 8: {"kind": "se"}}, "models has a model named 8: a name is lowercase letters"),
        ({"cnn": {"kind": "cnn"}, "comparison": {"kind": "se"}},
         "models has a model named 'comparison', a key of the metrics files beside the models"),
        ({"cnn": {"kind": "cnn"}}, "models must name at least two models (evaluate.baseline and a candidate), "
                                   "got 1"),
        ({f"m{i}": {"kind": "cnn"} for i in range(11)}, "models must name <= 10 models"),
        ({"se": {"kind": "se"}, "se8": {"kind": "se"}}, "evaluate.baseline must be one of models: se, se8, "
                                                        "got 'cnn'"),
        ({"cnn": {"kind": "cnn"}, "eca": {"kind": "eca", "gamma": 0}}, "models.eca.gamma must be > 0, got 0"),
        ({"cnn": {"kind": "cnn"}, "se": "big"}, "models.se must be a mapping of keys, got str"),
        ({"cnn": {"kind": "cnn"}, "se": {"kind": "se", "channels": [10**6]}}, "models.se.channels must be widths"),
    ],
)
def test_model_names_kinds_and_blocks_are_checked(models, message):
    with pytest.raises(SeecamError) as info:
        parse_params({"models": models}, source="params.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("params.yaml: ") and "\n" not in str(info.value)


def test_evaluate_candidate_is_gone_with_a_line_that_says_what_replaced_it():
    with pytest.raises(SeecamError, match=r"unknown key 'evaluate.candidate' \(allowed: batch_size, "):
        parse_params({"evaluate": {"candidate": "se"}})
