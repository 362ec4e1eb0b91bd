"""One definition of a training configuration: config_sha, model_sha, the checkpoint key and the sweep's names."""

from dataclasses import dataclass, replace

import pytest

from seecam.identity import Environment, checkpoint_key, config_sha, model_sha, sweep_digest
from seecam.params import CnnParams, EcaParams, Params, SeParams, TrainParams, parse_params

ENV = Environment(code_sha256="code1", data_sha256="data1", device="cpu", torch_version="2.14.1+cpu")


@dataclass(frozen=True)
class WarmupTrainParams(TrainParams):
    """TrainParams with one more key, as a future change to training would add it."""

    warmup_epochs: int = 0


def identities(params: Params, env: Environment = ENV, compiled: bool = False) -> dict[str, str]:
    return {"config_sha": config_sha(params, env),
            "model_sha cnn": model_sha("cnn", params), "model_sha se": model_sha("se", params),
            "checkpoint_key cnn": checkpoint_key("cnn", params, env, compiled),
            "sweep_digest": sweep_digest(params, env.code_sha256)}


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_a_new_training_param_changes_every_training_identity_together():
    """The identities read the params' own fields: a new train.* key needs no edit to identity.py."""
    plain = identities(replace(Params(), train=WarmupTrainParams(warmup_epochs=0)))
    warm = identities(replace(Params(), train=WarmupTrainParams(warmup_epochs=3)))
    assert changed(plain, warm) == {"config_sha", "checkpoint_key cnn", "sweep_digest"}
    assert plain == identities(replace(Params(), train=WarmupTrainParams(warmup_epochs=0)))  # deterministic
    assert len(plain["config_sha"]) == 16 and len(plain["model_sha se"]) == 16 and len(plain["sweep_digest"]) == 6


SHARED = {"config_sha", "checkpoint_key cnn", "sweep_digest"}


@pytest.mark.parametrize(("change", "expected"), [
    # the verdict pools seeds; a sweep's names carry the seed beside the digest
    ({"seed": 7}, {"checkpoint_key cnn"}),
    # a longer run continues a shorter one's checkpoint
    ({"train": {"epochs": 3}}, {"config_sha", "sweep_digest"}),
    ({"train": {"lr": 0.01}}, SHARED),
    ({"train": {"processes": 2}}, SHARED),
    ({"train": {"scale_batch": True}}, SHARED),
    ({"train": {"sync_batchnorm": True}}, SHARED),
    ({"data": {"subset": 100}}, SHARED),
    ({"data": {"split_seed": 1}}, SHARED),
    ({"data": {"source": "synthetic"}}, SHARED),
    # what `auto` resolves to on this machine counts, not how params.yaml spells it (the sweep's names, made
    # before any experiment resolves anything, take the spelling)
    ({"train": {"precision": "fp32"}}, {"sweep_digest"}),
    ({"train": {"device": "cpu"}}, {"sweep_digest"}),
    ({"train": {"precision": "bf16"}}, SHARED),
    # models are not in config_sha: a model's own block is its model_sha, and adding a model changes no other's
    ({"models": {"cnn": {"kind": "cnn", "hidden": 256}, "se": {"kind": "se"}}},
     {"model_sha cnn", "checkpoint_key cnn", "sweep_digest"}),
    ({"models": {"cnn": {"kind": "cnn"}, "se": {"kind": "se", "reduction": 8}}}, {"model_sha se", "sweep_digest"}),
    # before any data exist the sweep's digest stands in the data params for the data's sha256
    ({"data": {"synthetic": {"seed": 1}}}, {"sweep_digest"}),
    ({"evaluate": {"bootstrap_samples": 10}}, set()),
    ({"explain": {"mistakes": 2}}, set()),
    ({"tracking": {"experiment": "other"}}, set()),
    ({"data": {"timeout_seconds": 5}}, set()),
])
def test_each_identity_leaves_out_only_what_identity_py_names(change, expected):
    assert changed(identities(parse_params({})), identities(parse_params(change))) == expected


@pytest.mark.parametrize(("env", "compiled", "expected"), [
    (replace(ENV, data_sha256="data2"), False, {"config_sha", "checkpoint_key cnn"}),
    (replace(ENV, code_sha256="code2"), False, SHARED),
    # a CUDA run (bf16 by `auto`) and a CPU run never pool, nor do two torch builds
    (replace(ENV, device="cuda"), False, {"config_sha", "checkpoint_key cnn"}),
    (replace(ENV, torch_version="2.15.0"), False, {"config_sha", "checkpoint_key cnn"}),
    # train.compile: auto resolves by the number of epochs (out of the key): the resolved decision is in it
    (ENV, True, {"checkpoint_key cnn"}),
])
def test_data_code_device_torch_and_compile_decision(env, compiled, expected):
    assert changed(identities(Params()), identities(Params(), env, compiled)) == expected


def test_cuda_with_precision_fp32_and_with_auto_are_two_configurations():
    """On a CPU both are fp32 (the table above); on CUDA `auto` is bf16."""
    auto, fp32 = parse_params({}), parse_params({"train": {"precision": "fp32"}})
    cuda = replace(ENV, device="cuda")
    assert config_sha(auto, cuda) != config_sha(fp32, cuda)


def models_with(**blocks: CnnParams) -> Params:
    """Params whose models are the card's two plus or instead of `blocks` (a model added, or another kind)."""
    return replace(Params(), models=Params().models | blocks)


def test_adding_a_model_changes_no_other_models_identity():
    """Issue 25 lets users add models: the shared identity and cnn's own never read another model's block."""
    params = models_with(se8=SeParams(reduction=8))
    for identity in ("config_sha", "model_sha cnn", "model_sha se", "checkpoint_key cnn"):
        assert identities(params)[identity] == identities(Params())[identity], identity


def test_model_sha_is_the_models_kind_and_block_not_its_name():
    assert model_sha("se8", models_with(se8=SeParams())) == model_sha("se", Params())
    assert model_sha("cnn", models_with(cnn=EcaParams(gamma=2, b=1))) != model_sha("cnn", Params())


def test_each_model_resumes_only_its_own_checkpoint():
    assert checkpoint_key("cnn", Params(), ENV, False) != checkpoint_key("se", Params(), ENV, False)


def test_the_cards_models_keep_the_model_sha_they_had_before_models_were_data():
    """Issue 25 made `kind` a key of each block; the digest still hashes the params class and the block's fields
    (a kind's `gate` is a ClassVar, no field), so earlier runs' model_sha tags still name these networks."""
    params = parse_params({"models": {"cnn": {"kind": "cnn"}, "se": {"kind": "se"}}})
    assert (model_sha("cnn", params), model_sha("se", params)) == ("22fe7de513b4163c", "b2d3d1ef6b598e13")
