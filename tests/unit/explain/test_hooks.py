import pytest
import torch
from torch import nn

from helpers import hook_count
from seecam.errors import SeecamError
from seecam.explain.hooks import record
from seecam.models import build_model
from seecam.params import SeParams


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("se", SeParams()).train()


def test_hooks_are_removed_and_mode_restored_even_after_an_error(model):
    before = hook_count(model)
    with pytest.raises(RuntimeError, match="boom"), record(model, ["block3", "block2.se.gate"]):
        assert hook_count(model) == before + 2 and not model.training
        raise RuntimeError("boom")
    assert hook_count(model) == before and model.training
    for _ in range(5):
        with record(model, ["block3"]):
            model(torch.randn(2, 3, 32, 32))
    assert hook_count(model) == before


def test_activation_is_a_clone_that_in_place_relu_cannot_rewrite(model):
    with record(model, ["block1.bn"]) as rec:
        model(torch.randn(2, 3, 32, 32))
    # block1.relu is in place: the live output was clamped, the recorded clone still has negatives
    assert (rec.activations["block1.bn"] < 0).any()
    assert (rec.outputs["block1.bn"] >= 0).all()


def test_gradients_without_touching_parameter_grad_even_under_no_grad(model):
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad(), record(model, ["block3"]) as rec:
        logits = model(x)
        (grad,) = torch.autograd.grad(logits[:, 0].sum(), rec.outputs["block3"])
    assert all(p.grad is None for p in model.parameters()) and grad.shape == rec.outputs["block3"].shape
    with torch.no_grad():
        with record(model, ["block3"]):
            assert torch.is_grad_enabled()
        assert not torch.is_grad_enabled()


def test_gradient_through_multi_op_module_matches_autograd(model):
    # block2 = conv -> bn -> relu -> se -> pool: the gradient w.r.t. its recorded output is exact.
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with record(model, ["block2"]) as rec:
        (grad,) = torch.autograd.grad(model(x)[:, 3].sum(), rec.outputs["block2"])
    with torch.enable_grad():
        mid = model.block2(model.block1(x)).detach().requires_grad_()
        out = model.head(model.block3(mid))
        (expected,) = torch.autograd.grad(out[:, 3].sum(), mid)
    torch.testing.assert_close(grad, expected)


def test_graph_from_starts_the_graph_at_the_layer(model):
    with record(model, ["block3"], graph_from="block3") as rec:
        logits = model(torch.randn(2, 3, 32, 32))
        assert rec.outputs["block3"].is_leaf and logits.requires_grad
        torch.autograd.grad(logits.sum(), rec.outputs["block3"])
    assert all(p.grad is None for p in model.parameters())


def test_unknown_layer_lists_the_known_ones(model):
    with pytest.raises(SeecamError, match="no layer named 'block9'.*block3.se.gate"), record(model, ["block9"]):
        pass


@pytest.mark.filterwarnings("ignore")
def test_module_backward_hook_is_wrong_for_multi_op_modules_which_is_why_we_avoid_it():
    # The documented reason, checked: the legacy hook sees only the last op's gradient.
    block = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    x = torch.randn(2, 3, requires_grad=True)
    seen = {}
    block.register_backward_hook(lambda m, gi, go: seen.setdefault("grad_input", gi))
    block(x).sum().backward()
    assert not torch.allclose(seen["grad_input"][0], x.grad)  # it is dL/d(tanh input), not dL/dx
