import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from seecam.errors import SeecamError
from seecam.models import build_model, count_parameters, gates, model_config, model_from_config
from seecam.params import CnnParams, EcaParams, SeParams


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


def forward_order(model, names: tuple[str, ...]) -> tuple[list[str], dict]:
    """The order in which modules `names` ran in one forward pass, and each one's (inputs, output)."""
    order, seen = [], {}

    def record(name):
        def hook(module, inputs, output):
            order.append(name)
            seen[name] = (inputs, output)
        return hook

    for name in names:
        model.get_submodule(name).register_forward_hook(record(name))
    model(torch.randn(3, 3, 32, 32))
    return order, seen


def test_se_sits_after_relu_before_pooling_and_computes_its_formula():
    """The gate outputs the excitation s; the block's pooled output is MaxPool2(x * s), the paper's SE, pooled."""
    model = build_model("se", SeParams()).eval()
    order, seen = forward_order(model, ("block2.relu", "block2.se", "block2.pool"))
    assert order == ["block2.relu", "block2.se", "block2.pool"]
    (x,), excitation = seen["block2.se"]
    se = model.block2.se
    torch.testing.assert_close(excitation, torch.sigmoid(se.fc2(torch.relu(se.fc1(x.mean(dim=(2, 3)))))))
    assert torch.equal(seen["block2.pool"][1], F.max_pool2d(x * excitation[:, :, None, None], 2))  # exactly


def test_config_round_trip_and_a_config_of_no_kind():
    model = build_model("se", SeParams(reduction=8))
    rebuilt = model_from_config(model_config("se", SeParams(reduction=8)))
    rebuilt.load_state_dict(model.state_dict())
    with pytest.raises(SeecamError, match="kind 'resnet' is none of cnn, se, eca"):
        model_from_config(model_config("se", SeParams()) | {"kind": "resnet"})


def eca_kernel(channels: int, gamma: float = 2, b: float = 1) -> int:
    """ECA-Net (Wang et al., CVPR 2020), Eq. 12: k = |log2(C)/gamma + b/gamma|_odd, the nearest odd number."""
    t = abs(math.log2(channels) / gamma + b / gamma)
    return min((k for k in range(1, 2 * math.ceil(t) + 3, 2)), key=lambda k: (abs(k - t), -k))


@pytest.mark.parametrize("widths", [(32, 64, 128), (8, 16, 16), (1, 3, 256, 512)])
def test_eca_adds_k_weights_per_block_with_the_papers_kernel_size(widths):
    """One bias-free 1-D convolution of kernel k across the channels per block: k parameters, k from the paper."""
    params = EcaParams(channels=list(widths))
    model = build_model("eca", params)
    assert [model.get_submodule(f"block{i + 1}.eca").conv.kernel_size[0] for i in range(len(widths))] == \
        [eca_kernel(c) for c in widths]
    cnn = build_model("cnn", CnnParams(channels=list(widths)))
    assert count_parameters(model) - count_parameters(cnn) == sum(eca_kernel(c) for c in widths) == \
        params.weights() - CnnParams(channels=list(widths)).weights()
    assert [eca_kernel(c) for c in (32, 64, 128)] == [3, 3, 5]  # the tutorial's widths: 11 weights in all


def test_eca_sits_where_se_sits_and_computes_its_formula():
    """MaxPool2(x * sigmoid(conv1d_k(avgpool(x)))) across channels, after each block's ReLU."""
    model = build_model("eca", EcaParams()).eval()
    order, seen = forward_order(model, ("block2.relu", "block2.eca", "block2.eca.gate", "block2.pool"))
    assert order == ["block2.relu", "block2.eca.gate", "block2.eca", "block2.pool"]
    (x,), weights = seen["block2.eca"]
    weight = model.block2.eca.conv.weight[0, 0]
    k = len(weight)
    pooled = torch.nn.functional.pad(x.mean(dim=(2, 3)), (k // 2, k // 2))
    across = torch.stack([pooled[:, c:c + k] @ weight for c in range(x.shape[1])], dim=1)
    torch.testing.assert_close(weights, torch.sigmoid(across))
    assert torch.equal(seen["block2.pool"][1], F.max_pool2d(x * weights[:, :, None, None], 2))
    assert model.block2.eca.conv.bias is None


def test_a_kind_declares_its_gates():
    """Explain finds channel-attention gates (SE's excitation, ECA's weights) by what the kind declares."""
    assert gates(build_model("cnn", CnnParams())) == []
    assert gates(build_model("se", SeParams())) == ["block1.se.gate", "block2.se.gate", "block3.se.gate"]
    assert gates(build_model("eca", EcaParams(channels=[8, 16]))) == ["block1.eca.gate", "block2.eca.gate"]


def test_a_model_file_rebuilds_from_its_kind_whatever_its_name():
    params = EcaParams(channels=[8, 16], hidden=16)
    model = build_model("eca_wide", params)
    config = model_config("eca_wide", params)
    assert config["kind"] == "eca" and config["name"] == "eca_wide"
    model_from_config(config).load_state_dict(model.state_dict())


def textbook_block(block, x: torch.Tensor) -> torch.Tensor:
    """A gated block's tail (after its ReLU) as the SE paper writes it and seecam ran it before: plain autograd
    through mean, the rescaling of every value, then max-pooling."""
    se = block.se
    excitation = torch.sigmoid(se.fc2(torch.relu(se.fc1(x.mean(dim=(2, 3))))))
    return F.max_pool2d(x * excitation[:, :, None, None], 2)


def gated_tail(block, x: torch.Tensor) -> torch.Tensor:
    return block.pool(x, block.se(x))


@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
def test_the_se_block_equals_the_textbook_formulation_forward_and_backward(memory_format):
    """Rescaling after pooling gives the same values (exactly) and the same gradients (within float rounding:
    the excitation's gradient sums the same products in another order)."""
    torch.manual_seed(0)
    block = build_model("se", SeParams()).block2
    x = torch.randn(8, 64, 16, 16).relu().contiguous(memory_format=memory_format).requires_grad_()
    upstream = torch.randn(8, 64, 8, 8)
    results = []
    for forward in (gated_tail, textbook_block):
        block.zero_grad()
        out = forward(block, x)
        (grad_x,) = torch.autograd.grad(out, x, upstream, retain_graph=True)
        out.backward(upstream)
        results.append((out.detach(), grad_x, block.se.fc1.weight.grad.clone(), block.se.fc2.weight.grad.clone()))
    (ours, *our_grads), (textbook, *textbook_grads) = results
    assert torch.equal(ours, textbook)
    for mine, theirs in zip(our_grads, textbook_grads, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)


def test_the_se_backward_writes_two_activation_sized_tensors_in_the_activations_layout():
    # Autograd's own backward of x * e and x.mean wrote four activation-sized tensors, one of them NCHW
    # (the mean's g / HW) that the next add read against channels_last: the SE step was 40 % slower than the
    # CNN's on a CPU for +0.02 % FLOPs. Rescaled after pooling, the block's tail writes two, max-pooling's own one
    # among them.
    from torch.utils._python_dispatch import TorchDispatchMode

    block = build_model("se", SeParams()).block1
    x = torch.randn(4, 32, 32, 32).relu().contiguous(memory_format=torch.channels_last).requires_grad_()
    out = gated_tail(block, x)
    upstream = torch.randn_like(out)
    written = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            result = func(*args, **(kwargs or {}))
            read = {a.untyped_storage().data_ptr() for a in args if isinstance(a, torch.Tensor)}
            if (isinstance(result, torch.Tensor) and result.shape == x.shape
                    and result.untyped_storage().data_ptr() not in read):  # written, not a view
                written.append((func.__name__, result.is_contiguous(memory_format=torch.channels_last)))
            return result

    with Record():
        out.backward(upstream)
    assert all(channels_last for _, channels_last in written), written
    assert len(written) <= 2, written  # max-pooling's gradient, and the squeeze's added to it


def test_training_steps_of_the_se_model_equal_those_with_the_textbook_block():
    """Three Adam steps: the same losses, and the first step's gradients within float rounding. (Not the same
    weights after: a conv bias before BatchNorm has a gradient of zero up to rounding, BatchNorm subtracts it
    again, and Adam scales any gradient to a step of about lr, so its rounding noise moves it by lr.)"""
    def trained(textbook: bool) -> tuple[list[float], list[dict[str, torch.Tensor]]]:  # the first step's grads
        torch.manual_seed(0)
        model = build_model("se", SeParams()).to(memory_format=torch.channels_last)
        if textbook:
            for block in (model.block1, model.block2, model.block3):
                block.forward = lambda x, b=block: textbook_block(b, b.relu(b.bn(b.conv(x))))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        data = torch.Generator().manual_seed(1)
        losses, grads = [], []
        for _ in range(3):
            x = torch.randn(16, 3, 32, 32, generator=data).contiguous(memory_format=torch.channels_last)
            loss = torch.nn.functional.cross_entropy(model(x), torch.randint(0, 10, (16,), generator=data))
            optimizer.zero_grad()
            loss.backward()
            if not grads:
                grads.append({name: p.grad.clone() for name, p in model.named_parameters()})
            optimizer.step()
            losses.append(loss.item())
        return losses, grads

    (ours, our_grads), (textbook, textbook_grads) = trained(False), trained(True)
    assert ours == pytest.approx(textbook, rel=1e-6)
    for name, grad in our_grads[0].items():
        torch.testing.assert_close(grad, textbook_grads[0][name], rtol=1e-4, atol=1e-6, msg=name)
