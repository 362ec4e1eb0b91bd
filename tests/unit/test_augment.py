"""Batched augmentation vs torchvision's functional ops, image by image, for the same parameters.

Tolerance: crop and flip are exact; rotation is exact (same grid, nearest);
colour ops agree within 1e-5 in [0, 1] (float32 rounding of the HSV round trip).
"""

import pytest
import torch
import torchvision.transforms.functional as TF  # noqa: N812
from torchvision.transforms import InterpolationMode

from seecam.augment import (
    COLOR_OPS,
    Augmenter,
    Draw,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    crop_flip,
    rotate,
    sample,
)
from seecam.params import AugmentParams

TV_COLOR = {
    "brightness": TF.adjust_brightness, "contrast": TF.adjust_contrast,
    "saturation": TF.adjust_saturation, "hue": TF.adjust_hue,
}


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8, generator=g)


def test_crop_flip_matches_torchvision(images):
    g = torch.Generator().manual_seed(1)
    offsets = torch.randint(0, 9, (12, 2), generator=g)
    flip = torch.arange(12) % 2 == 0
    out = crop_flip(images, offsets, flip, padding=4)
    for i in range(12):
        top, left = offsets[i].tolist()
        expected = TF.crop(TF.pad(images[i], [4]), top, left, 32, 32)
        if flip[i]:
            expected = TF.hflip(expected)
        assert torch.equal(out[i], expected)


def test_the_colour_ops_get_nchw_images_so_their_loops_run_along_a_row():
    # A gather in NHWC handed the colour ops channels_last images, whose innermost dimension is the 3 colours:
    # each broadcast blend then looped 3 values at a time (the augmentation took a third more time).
    draw = sample(12, AugmentParams(), torch.Generator().manual_seed(0), torch.device("cpu"))
    images = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8)
    assert crop_flip(images, draw.offsets, draw.flip, padding=4).is_contiguous()
    assert Augmenter(AugmentParams(), torch.device("cpu")).apply(images, draw).is_contiguous()


@pytest.mark.parametrize(
    ("ours", "name", "values"),
    [
        (adjust_brightness, "brightness", [0.8, 1.0, 1.2, 0.95]),
        (adjust_contrast, "contrast", [0.8, 1.0, 1.2, 1.1]),
        (adjust_saturation, "saturation", [0.8, 1.0, 1.2, 0.9]),
        (adjust_hue, "hue", [-0.1, 0.0, 0.1, 0.05]),
    ],
)
def test_color_ops_match_torchvision(images, ours, name, values):
    x = images[:4].float() / 255
    out = ours(x.clone(), torch.tensor(values))
    for i, v in enumerate(values):
        torch.testing.assert_close(out[i], TV_COLOR[name](x[i], v), atol=1e-5, rtol=0)


def test_rotation_matches_torchvision_nearest_fill_0(images):
    x = images.float() / 255
    angles = torch.linspace(-15, 15, 12)
    out = rotate(x, angles)
    for i in range(12):
        expected = TF.rotate(x[i], angles[i].item(), interpolation=InterpolationMode.NEAREST, fill=0)
        assert torch.equal(out[i], expected), i


def test_whole_pipeline_matches_torchvision_in_each_images_colour_order(images):
    aug = AugmentParams()
    g = torch.Generator().manual_seed(3)
    draw = sample(12, aug, g, torch.device("cpu"))
    out = Augmenter(aug, torch.device("cpu")).apply(images, draw)
    mean, std = torch.tensor([0.4914, 0.4822, 0.4465]), torch.tensor([0.2470, 0.2435, 0.2616])
    for i in range(12):
        top, left = draw.offsets[i].tolist()
        x = TF.crop(TF.pad(images[i], [4]), top, left, 32, 32)
        x = (TF.hflip(x) if draw.flip[i] else x).float() / 255
        for op in draw.order[i].tolist():
            x = TV_COLOR[COLOR_OPS[op]](x, draw.factors[i, op].item())
        x = TF.rotate(x, draw.angles[i].item(), interpolation=InterpolationMode.NEAREST, fill=0)
        x = TF.normalize(x, mean.tolist(), std.tolist())
        torch.testing.assert_close(out[i], x, atol=1e-4, rtol=0)  # 1e-5 in [0, 1], divided by std ~0.25


def test_parameters_differ_across_images_and_stay_in_range():
    aug = AugmentParams()
    draw = sample(256, aug, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert len(set(map(tuple, draw.offsets.tolist()))) > 40
    assert 0.3 < draw.flip.float().mean() < 0.7
    assert draw.angles.abs().max() <= 15 and draw.angles.std() > 5
    assert (draw.factors[:, :3] >= 0.8).all() and (draw.factors[:, :3] <= 1.2).all()
    assert draw.factors[:, 3].abs().max() <= 0.1
    assert len({tuple(o) for o in draw.order.tolist()}) > 12  # many of the 24 orders


def test_identity_parameters_give_the_input_back(images):
    n = len(images)
    identity = Draw(
        offsets=torch.full((n, 2), 4), flip=torch.zeros(n, dtype=torch.bool),
        factors=torch.tensor([[1.0, 1.0, 1.0, 0.0]]).repeat(n, 1),
        order=torch.arange(4).repeat(n, 1), angles=torch.zeros(n),
    )
    augmenter = Augmenter(AugmentParams(), torch.device("cpu"))
    out = augmenter.apply(images, identity)
    torch.testing.assert_close(out, augmenter.normalize(images), atol=1e-5, rtol=0)


def test_tutorial_normalisation_divides_by_the_tutorial_std(images):
    out = Augmenter(AugmentParams(), torch.device("cpu"), "tutorial").normalize(images)
    mean, std = torch.tensor([0.4914, 0.4822, 0.4465]), torch.tensor([0.2023, 0.1994, 0.2010])
    torch.testing.assert_close(out, (images.float() / 255 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))


def test_same_generator_state_gives_the_same_batch(images):
    augmenter = Augmenter(AugmentParams(), torch.device("cpu"))
    a = augmenter(images, torch.Generator().manual_seed(5))
    b = augmenter(images, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_the_sync_free_hue_path_cuda_takes_is_bit_identical_to_the_indexed_one(images):
    # CUDA computes hue for every image and selects (no nonzero(), which makes the host wait for the device)
    augmenter = Augmenter(AugmentParams(), torch.device("cpu"))
    draw = sample(len(images), AugmentParams(), torch.Generator().manual_seed(7), torch.device("cpu"))
    assert (draw.order == 3).any(dim=0).all()  # hue at every position for some image
    indexed = augmenter.apply(images, draw)
    augmenter.sync_free = True
    assert torch.equal(augmenter.apply(images, draw), indexed)
