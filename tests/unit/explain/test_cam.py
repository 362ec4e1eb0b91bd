import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from helpers import hook_count
from seecam.errors import SeecamError
from seecam.explain.cam import METHODS, cam_batch, cam_images, normalise, upsample
from seecam.models import build_model
from seecam.normalize import Normalizer
from seecam.params import CnnParams, EcaParams, SeParams


@pytest.fixture(params=["cnn", "se", "eca"])
def model(request):
    torch.manual_seed(1)
    params = {"se": SeParams(), "eca": EcaParams()}.get(request.param, CnnParams())
    return build_model(request.param, params).eval()


def reference_grad_cam(model, x, target, layer_index):
    """Selvaraju et al., written out with plain autograd on the model's own pieces (no hooks)."""
    blocks = [getattr(model, name) for name in model.block_names]
    a = x
    for block in blocks[:layer_index + 1]:
        a = block(a)
    a = a.detach().requires_grad_()
    out = a
    for block in blocks[layer_index + 1:]:
        out = block(out)
    score = model.head(out)[0, target]
    (g,) = torch.autograd.grad(score, a)
    weights = g.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * a).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=(32, 32), mode="bilinear", align_corners=False)[0, 0]
    return (cam - cam.min()) / (cam.max() - cam.min() + 1e-8)


@pytest.mark.parametrize("layer_index", [1, 2])
def test_grad_cam_agrees_with_the_reference_definition(model, layer_index):
    x = torch.randn(4, 3, 32, 32)
    result = cam_batch(model, x, f"block{layer_index + 1}")
    for i in range(4):
        expected = reference_grad_cam(model, x[i:i + 1], result.targets[i].item(), layer_index)
        torch.testing.assert_close(result.maps[i], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_batch_equals_one_image_at_a_time(model, method):
    x = torch.randn(5, 3, 32, 32)
    targets = torch.tensor([0, 3, 3, 9, 1])
    batch = cam_batch(model, x, "block3", method, targets)
    assert batch.raw.shape == (5, 4, 4) and batch.maps.shape == (5, 32, 32)
    assert batch.maps.min() >= 0 and batch.maps.max() <= 1
    for i in range(5):
        single = cam_batch(model, x[i:i + 1], "block3", method, targets[i:i + 1])
        torch.testing.assert_close(batch.raw[i], single.raw[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(batch.maps[i], single.maps[0], atol=1e-4, rtol=0)


def test_default_target_is_the_prediction_and_nothing_leaks(model):
    images = torch.randint(0, 256, (7, 3, 32, 32), dtype=torch.uint8)
    before = hook_count(model)
    with torch.no_grad():
        result = cam_images(model, images, "block2", batch_size=3)
    assert result.maps.shape == (7, 32, 32) and result.raw.shape == (7, 8, 8)
    assert torch.equal(result.targets, result.probabilities.argmax(1))
    assert hook_count(model) == before and not model.training
    assert all(p.grad is None for p in model.parameters())


def hand_forward_steps(model):
    """The network as (name, function) steps written out by hand: no hooks, no in-place ReLU."""
    steps = []
    for name in model.block_names:
        block = getattr(model, name)
        steps += [(f"{name}.conv", block.conv), (f"{name}.bn", block.bn), (f"{name}.relu", F.relu)]
        if block.gate_name is None:
            steps.append((f"{name}.pool", lambda x: F.max_pool2d(x, 2)))
        else:  # the gate's channel weights rescale the pooled values
            gate = getattr(block, block.gate_name)
            steps.append((f"{name}.pool", lambda x, gate=gate: F.max_pool2d(x, 2) * gate(x)[:, :, None, None]))
        steps.append((name, lambda x: x))
    head = model.head
    return steps + [("head.fc1", lambda x: head.fc1(x.flatten(1))), ("head.relu", F.relu), ("head.fc2", head.fc2)]


def hand_grad_cam(model, x, layer):
    """Grad-CAM of each image's predicted class at `layer`, from the hand-written forward and autograd.grad."""
    steps = hand_forward_steps(model)
    names = [n for n, _ in steps]
    a = x
    with torch.no_grad():
        for _, step in steps[: names.index(layer) + 1]:
            a = step(a)
    a = a.detach().requires_grad_()
    out = a
    for _, step in steps[names.index(layer) + 1:]:
        out = step(out)
    targets = out.argmax(dim=1)
    (g,) = torch.autograd.grad(out.gather(1, targets[:, None]).sum(), a)
    return torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1)).detach(), targets


def spatial_layer_names():
    blocks = ["block1", "block2", "block3"]
    return [f"{b}{p}" for b in blocks for p in ("", ".conv", ".bn", ".relu", ".pool")]


@pytest.mark.parametrize("name,layer", [(n, layer) for n in ("cnn", "se", "eca") for layer in spatial_layer_names()])
def test_every_4d_layer_matches_a_hook_free_reference(small_model, name, layer):
    model = small_model(name)
    x = torch.randn(3, 3, 32, 32)
    expected_raw, expected_targets = hand_grad_cam(model, x, layer)
    result = cam_batch(model, x, layer)
    assert torch.equal(result.targets, expected_targets)
    torch.testing.assert_close(result.raw, expected_raw, atol=1e-5, rtol=0)
    torch.testing.assert_close(result.maps, normalise(upsample(expected_raw, (32, 32))), atol=1e-5, rtol=0)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("layer", ["head.fc1", "head.fc2", "block1.se.fc1", "block2.se.gate"])
def test_a_layer_without_a_spatial_map_is_refused_by_name(small_model, layer):
    model = small_model("se")
    with pytest.raises(SeecamError, match=rf"layer '{layer}' has a 2-D output.*4-D.*block1, block1.conv.*block3.pool"):
        cam_batch(model, torch.randn(2, 3, 32, 32), layer)


@pytest.mark.parametrize("name,layer", [(n, layer) for n in ("cnn", "se", "eca") for layer in spatial_layer_names()])
def test_cam_images_with_batchnorm_folded_matches_the_hook_free_reference(small_model, name, layer):
    """cam_images folds BN into the convolutions (explain/fold.py): the same CAMs up to float rounding."""
    model = small_model(name)
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    expected_raw, expected_targets = hand_grad_cam(model, Normalizer.for_model(model, images.device)(images), layer)
    result = cam_images(model, images, layer, batch_size=2)
    assert torch.equal(result.targets, expected_targets)
    torch.testing.assert_close(result.raw, expected_raw, atol=1e-5, rtol=0)
    torch.testing.assert_close(result.maps, normalise(upsample(expected_raw, (32, 32))), atol=1e-5, rtol=0)
    assert isinstance(model.block1.bn, torch.nn.BatchNorm2d)  # the caller's model is untouched
