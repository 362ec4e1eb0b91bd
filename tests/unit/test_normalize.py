"""Input normalisation: what the tutorial's transforms.ToTensor + Normalize compute, batched, for either std set."""

import pytest
import torch
from torchvision import transforms

from seecam.models import build_model
from seecam.normalize import Normalizer
from seecam.params import CnnParams

CPU = torch.device("cpu")
# The published constants (the tutorial's code and the CIFAR-10 train set's per-pixel statistics), written out
# here rather than read from normalize.py, so a changed constant fails.
MEAN = (0.4914, 0.4822, 0.4465)
STDS = {"cifar10": (0.2470, 0.2435, 0.2616), "tutorial": (0.2023, 0.1994, 0.2010)}


def images(seed: int = 0) -> torch.Tensor:
    """Two random uint8 NCHW images."""
    return torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("normalization", ["cifar10", "tutorial"])
def test_a_batch_is_normalised_as_the_tutorials_transforms_normalise_each_image(normalization):
    batch = images()
    reference = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STDS[normalization])])
    expected = torch.stack([reference(image.permute(1, 2, 0).numpy()) for image in batch])  # HWC uint8, as PIL's
    torch.testing.assert_close(Normalizer(CPU, normalization)(batch), expected)


def test_a_white_pixel_by_hand():
    white = torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)
    out = Normalizer(CPU, "cifar10")(white).flatten().tolist()
    assert out == pytest.approx([(1 - 0.4914) / 0.2470, (1 - 0.4822) / 0.2435, (1 - 0.4465) / 0.2616], rel=1e-6)


def test_float_images_in_0_1_are_not_scaled_again():
    batch = images()
    normalise = Normalizer(CPU, "tutorial")
    torch.testing.assert_close(normalise(batch.float() / 255), normalise(batch))


def test_a_model_is_fed_what_it_was_trained_on():
    model = build_model("cnn", CnnParams(channels=[4], hidden=8), "tutorial")
    white = torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)
    out = Normalizer.for_model(model, CPU)(white).flatten().tolist()
    assert out == pytest.approx([(1 - m) / s for m, s in zip(MEAN, STDS["tutorial"], strict=True)], rel=1e-6)
