"""Faithfulness of Grad-CAM: pointing game, deletion/insertion, the randomisation check and its Spearman."""

import numpy as np
import pytest
import scipy.stats
import torch

from seecam.explain.cam import cam_images
from seecam.explain.faithfulness import (
    deletion_insertion_auc,
    faithfulness,
    mean_defined,
    pointing_game,
    randomized_copy,
    salience_ranks,
    spearman,
)
from seecam.explain.fold import fold_batchnorm
from seecam.inference import predict_logits, to_device
from seecam.models import build_model
from seecam.normalize import Normalizer
from seecam.params import CnnParams

CPU = torch.device("cpu")


def test_grad_cam_points_at_the_object_far_above_chance(trained):
    model, data = trained
    images = to_device(data.test.images, CPU)
    correct = (predict_logits(model, images).argmax(1).numpy() == data.test.labels).nonzero()[0]
    assert len(correct) > 200
    cams = cam_images(model, images[correct], "block3")
    hit, chance = pointing_game(cams.maps, data.test.boxes[correct])
    assert hit > 60 and chance < 25, (hit, chance)


def test_randomisation_check_separates_trained_from_random_weights(trained):
    model, data = trained
    images = to_device(data.test.images[:100], CPU)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    random_model = randomized_copy(model, seed=0)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # original untouched
    assert not torch.equal(random_model.block1.conv.weight, model.block1.conv.weight)
    trained_maps = cam_images(model, images, "block3")
    random_maps = cam_images(random_model, images, "block3", targets=trained_maps.targets)
    assert spearman(trained_maps.maps, trained_maps.maps).mean().item() == pytest.approx(1.0, abs=1e-5)
    rho, undefined = mean_defined(spearman(trained_maps.maps, random_maps.maps))
    assert rho < 0.5 and undefined < 100


def test_faithfulness_metrics_of_a_trained_model(trained):
    model, data = trained
    images = to_device(data.test.images[:200], CPU)
    metrics = faithfulness(model, images, "block3", steps=8, batch=100, boxes=data.test.boxes[:200])
    assert metrics["deletion_auc"] < metrics["insertion_auc"]
    assert 0 <= metrics["average_drop"] <= 100 and 0 <= metrics["increase_in_confidence"] <= 100
    assert metrics["pointing_game"] > 2 * metrics["pointing_game_random"]
    assert abs(metrics["randomization_spearman"]) < 0.5
    assert 0 <= metrics["randomization_undefined_pairs"] < 200


def test_salience_ranks_and_spearman_by_hand():
    maps = torch.tensor([[[0.1, 0.9], [0.5, 0.0]]])
    assert salience_ranks(maps).tolist() == [[2, 0, 1, 3]]
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert spearman(a, a).item() == pytest.approx(1.0)
    assert spearman(a, -a).item() == pytest.approx(-1.0)


def test_pointing_game_by_hand():
    maps = torch.zeros(2, 32, 32)
    maps[0, 5, 6] = 1  # inside its box
    maps[1, 30, 30] = 1  # outside
    boxes = np.array([[4, 4, 12, 12], [0, 0, 16, 16]])
    hit, chance = pointing_game(maps, boxes)
    assert hit == 50.0 and chance == pytest.approx((64 + 256) / 2 / 1024 * 100)


def test_spearman_uses_average_ranks_for_ties():
    # a ranks [0.5, 0.5, 2, 3], b ranks [0.5, 2, 0.5, 3]; centred: [-1, -1, .5, 1.5], [-1, .5, -1, 1.5]
    # rho = (1 - .5 - .5 + 2.25) / 4.5 = 0.5 (ordinal ranks by position would give 0.8)
    a = torch.tensor([[0.0, 0.0, 1.0, 2.0]])
    b = torch.tensor([[0.0, 1.0, 0.0, 2.0]])
    assert spearman(a, b).item() == pytest.approx(0.5)


def test_spearman_of_half_zero_independent_maps_matches_scipy():
    # CAMs after their ReLU: about half the pixels tie at zero. The issue measured 0.063 here vs 0.002.
    generator = torch.Generator().manual_seed(0)
    maps = (torch.rand(2, 40, 32, 32, generator=generator) - 0.5).clamp(min=0)
    ours = spearman(maps[0], maps[1])
    expected = [scipy.stats.spearmanr(x.flatten(), y.flatten()).statistic for x, y in zip(*maps, strict=True)]
    torch.testing.assert_close(ours, torch.tensor(expected, dtype=torch.float32), atol=1e-5, rtol=0)
    assert abs(ours.mean().item()) < 0.02


def test_spearman_is_undefined_for_a_constant_map_and_such_pairs_are_left_out():
    zero, ramp = torch.zeros(1, 4, 4), torch.arange(16.0).view(1, 4, 4)
    rho = spearman(torch.cat([zero, zero, ramp]), torch.cat([zero, ramp, ramp]))
    assert rho[:2].isnan().all() and rho[2].item() == pytest.approx(1.0)  # two all-zero maps are not "1.0"
    assert mean_defined(rho) == (pytest.approx(1.0), 2)
    assert mean_defined(torch.tensor([float("nan")])) == (None, 1)


def test_randomized_copy_leaves_the_global_random_stream_where_it_was():
    model = build_model("cnn", CnnParams(channels=[4, 8, 8], hidden=8))
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    first = randomized_copy(model, seed=1)
    assert torch.equal(torch.rand(3), expected)
    again = randomized_copy(model, seed=1)  # and the copy itself is reproducible
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in first.state_dict().items())


@torch.no_grad()
def per_step_deletion_insertion(model, inputs, maps, targets, steps):
    """The definition, one forward per curve point over all images (the unbatched, unfolded reference)."""
    ranks = salience_ranks(maps).view(len(maps), 1, *maps.shape[1:])
    deletion, insertion = [], []
    for step in range(steps + 1):
        changed = (ranks < round(step * maps[0].numel() / steps)).float()
        for curve, x in ((deletion, inputs * (1 - changed)), (insertion, inputs * changed)):
            curve.append(torch.softmax(model(x), dim=1).gather(1, targets[:, None])[:, 0])
    fractions = torch.linspace(0, 1, steps + 1)
    return (torch.trapezoid(torch.stack(deletion, 1), fractions, dim=1),
            torch.trapezoid(torch.stack(insertion, 1), fractions, dim=1))


@pytest.mark.parametrize("steps,batch", [(1, 7), (5, 7), (16, 250), (16, 3)])
def test_batched_deletion_insertion_equals_the_per_step_definition(trained, steps, batch):
    model, data = trained
    images = to_device(data.test.images[:37], CPU)
    cams = cam_images(model, images, "block3")
    inputs = Normalizer.for_model(model, CPU)(images)
    full = cams.probabilities.gather(1, cams.targets[:, None])[:, 0]
    deletion, insertion = deletion_insertion_auc(fold_batchnorm(model), inputs, cams.maps, cams.targets, full,
                                                 steps, batch)
    expected_deletion, expected_insertion = per_step_deletion_insertion(model, inputs, cams.maps, cams.targets, steps)
    torch.testing.assert_close(deletion, expected_deletion, atol=1e-5, rtol=0)
    torch.testing.assert_close(insertion, expected_insertion, atol=1e-5, rtol=0)
