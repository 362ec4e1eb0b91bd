"""One definition of a training configuration: config_sha, the checkpoint key and the sweep's names agree."""

import json
import shutil
from dataclasses import dataclass, replace

import pytest

from helpers import REPO
from seecam.identity import checkpoint_key, config_sha, sweep_digest, workspace_config_sha
from seecam.params import Params, TrainParams, parse_params


@dataclass(frozen=True)
class WarmupTrainParams(TrainParams):
    """TrainParams with one more key, as a future change to training would add it."""

    warmup_epochs: int = 0


def identities(params: Params, data: str = "data1", code: str = "code1", device: str = "cpu",
               compiled: bool = False) -> dict[str, str]:
    return {"config_sha": config_sha(params, data, code),
            "checkpoint_key": checkpoint_key("cnn", params, data, code, device, compiled),
            "sweep_digest": sweep_digest(params, code)}


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_a_new_training_param_changes_all_three_identities_together():
    """The identities read the params' own fields: a new train.* key needs no edit to identity.py."""
    plain = identities(replace(Params(), train=WarmupTrainParams(warmup_epochs=0)))
    warm = identities(replace(Params(), train=WarmupTrainParams(warmup_epochs=3)))
    assert changed(plain, warm) == {"config_sha", "checkpoint_key", "sweep_digest"}
    assert plain == identities(replace(Params(), train=WarmupTrainParams(warmup_epochs=0)))  # deterministic
    assert len(plain["config_sha"]) == 16 and len(plain["sweep_digest"]) == 6


@pytest.mark.parametrize(("change", "expected"), [
    # the verdict pools seeds; a sweep's names carry the seed beside the digest
    ({"seed": 7}, {"checkpoint_key"}),
    # a longer run continues a shorter one's checkpoint
    ({"train": {"epochs": 3}}, {"config_sha", "sweep_digest"}),
    ({"train": {"lr": 0.01}}, {"config_sha", "checkpoint_key", "sweep_digest"}),
    ({"train": {"processes": 2}}, {"config_sha", "checkpoint_key", "sweep_digest"}),
    ({"data": {"subset": 100}}, {"config_sha", "checkpoint_key", "sweep_digest"}),
    ({"data": {"source": "synthetic"}}, {"config_sha", "checkpoint_key", "sweep_digest"}),
    ({"models": {"cnn": {"hidden": 256}}}, {"config_sha", "checkpoint_key", "sweep_digest"}),
    # the other model's params do not touch cnn's training, but all models of a configuration share config_sha
    ({"models": {"se": {"reduction": 8}}}, {"config_sha", "sweep_digest"}),
    # before any data exist the sweep's digest stands in the data params for the data's sha256
    ({"data": {"synthetic": {"seed": 1}}}, {"sweep_digest"}),
    ({"evaluate": {"bootstrap_samples": 10}}, set()),
    ({"explain": {"mistakes": 2}}, set()),
    ({"tracking": {"experiment": "other"}}, set()),
    ({"data": {"timeout_seconds": 5}}, set()),
])
def test_each_identity_leaves_out_only_what_identity_py_names(change, expected):
    assert changed(identities(parse_params({})), identities(parse_params(change))) == expected


def test_data_code_device_and_compile_decision():
    base = identities(Params())
    assert changed(base, identities(Params(), data="data2")) == {"config_sha", "checkpoint_key"}
    assert changed(base, identities(Params(), code="code2")) == {"config_sha", "checkpoint_key", "sweep_digest"}
    # train.compile: auto resolves by the number of epochs (out of the key): the resolved decision is in it
    assert changed(base, identities(Params(), compiled=True)) == {"checkpoint_key"}
    assert changed(base, identities(Params(), device="cuda")) == {"checkpoint_key"}
    assert checkpoint_key("cnn", Params(), "d", "c", "cpu", False) != checkpoint_key("se", Params(), "d", "c", "cpu",
                                                                                     False)


def test_config_sha_ignores_seed_and_non_training_params_but_nothing_else():
    base = config_sha(parse_params({}), "data1", "code1")
    assert len(base) == 16
    for same in ({"seed": 7}, {"evaluate": {"bootstrap_samples": 10}}, {"explain": {"mistakes": 2}},
                 {"tracking": {"experiment": "other"}}):
        assert config_sha(parse_params(same), "data1", "code1") == base, same
    for different in ({"train": {"lr": 0.01}}, {"train": {"augment": {"flip": False}}}, {"data": {"subset": 100}},
                      {"models": {"se": {"reduction": 8}}}, {"models": {"cnn": {"hidden": 256}}}):
        assert config_sha(parse_params(different), "data1", "code1") != base, different
    assert config_sha(parse_params({}), "data2", "code1") != base
    assert config_sha(parse_params({}), "data1", "code2") != base  # other training code never pools


def test_workspace_config_sha_follows_the_training_code(tmp_path, monkeypatch):
    """The verdict's default selection is the workspace's code too: an edit to any training module changes it."""
    shutil.copy(REPO / "dvc.yaml", tmp_path)
    for folder in ("src", "stages"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    (tmp_path / "data/cifar10").mkdir(parents=True)
    (tmp_path / "data/cifar10/meta.json").write_text(json.dumps({"sha256": {"all": "data1"}}))
    monkeypatch.chdir(tmp_path)
    before = workspace_config_sha(parse_params({}))
    augment = tmp_path / "src/seecam/augment.py"
    augment.write_text(augment.read_text() + "\n# changed\n")
    assert workspace_config_sha(parse_params({})) != before
