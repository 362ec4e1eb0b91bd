import pytest
import torch

from seecam.errors import SeecamError
from seecam.models import build_model, count_parameters, model_config, model_from_config
from seecam.params import CnnParams, SeParams


def expected_cnn_parameters(widths=(32, 64, 128), hidden=512) -> int:
    convs = sum(c_in * c_out * 9 + c_out + 2 * c_out for c_in, c_out in zip((3, *widths), widths, strict=False))
    return convs + (widths[-1] * 4 * 4 * hidden + hidden) + (hidden * 10 + 10)


def test_cnn_is_the_tutorial_architecture():
    model = build_model("cnn", CnnParams())
    assert count_parameters(model) == expected_cnn_parameters() == 1_147_914
    assert model.head.fc1.in_features == 2048 and model.head.fc1.out_features == 512
    assert model.head.dropout.p == 0.5
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_se_adds_bias_free_squeeze_excitation_with_reduction_16():
    model = build_model("se", SeParams())
    se = model.block3.se
    assert (se.fc1.in_features, se.fc1.out_features, se.fc2.out_features) == (128, 8, 128)
    assert se.fc1.bias is None and se.fc2.bias is None
    extra = sum(2 * c * (c // 16) for c in (32, 64, 128))
    assert count_parameters(model) == expected_cnn_parameters() + extra


def test_stable_module_names():
    names = dict(build_model("se", SeParams()).named_modules())
    for name in ("block1.conv", "block1.bn", "block2.se.gate", "block3.se", "block3.pool", "head.fc1", "head.fc2"):
        assert name in names
    assert "block1.se" not in dict(build_model("cnn", CnnParams()).named_modules())


def test_se_sits_after_relu_before_pooling_and_computes_its_formula():
    model = build_model("se", SeParams()).eval()
    order, seen = [], {}

    def record(name):
        def hook(module, inputs, output):
            order.append(name)
            seen[name] = (inputs, output)
        return hook

    for name in ("block2.relu", "block2.se", "block2.pool"):
        model.get_submodule(name).register_forward_hook(record(name))
    model(torch.randn(3, 3, 32, 32))
    assert order == ["block2.relu", "block2.se", "block2.pool"]
    (x,), out = seen["block2.se"]
    se = model.block2.se
    excitation = torch.sigmoid(se.fc2(torch.relu(se.fc1(x.mean(dim=(2, 3))))))
    torch.testing.assert_close(out, x * excitation[:, :, None, None])


def test_config_round_trip_and_wrong_architecture():
    model = build_model("se", SeParams(reduction=8))
    rebuilt = model_from_config(model_config("se", SeParams(reduction=8)))
    rebuilt.load_state_dict(model.state_dict())
    with pytest.raises(SeecamError, match="other architecture"):
        build_model("se", CnnParams())
