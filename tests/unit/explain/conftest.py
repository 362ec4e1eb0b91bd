"""Models the explain tests share: one SE model trained on synthetic data, and small ones with real BatchNorm."""

from collections.abc import Callable

import pytest
import torch

from seecam.data.store import Dataset, attach_meta
from seecam.data.synthetic import make_synthetic
from seecam.models import build_model
from seecam.params import CnnParams, EcaParams, SeParams, parse_params
from seecam.training_loop import FitConfig, fit, seed_everything, training_splits

SMALL = {"cnn": CnnParams(channels=[8, 16, 16], hidden=32),
         "se": SeParams(channels=[8, 16, 16], hidden=32, reduction=4),
         "eca": EcaParams(channels=[8, 16, 16], hidden=32)}


@pytest.fixture(scope="session")
def trained() -> tuple[torch.nn.Module, Dataset]:
    """An SE model trained a few epochs on synthetic data (objects with known boxes), and that data.

    Read-only: shared by the tests of faithfulness, excitation and the explain stage.
    """
    params = parse_params({"data": {"source": "synthetic", "val_size": 300,
                                    "synthetic": {"train_size": 3000, "test_size": 400}}, "train": {"epochs": 5}})
    data = attach_meta(make_synthetic(3000, 400, seed=0), {"kind": "synthetic"})
    seed_everything(0)
    model = build_model("se", params.model("se"))
    fit(model, training_splits(data, params.data, torch.device("cpu")), FitConfig(params.train, 0, torch.device("cpu")))
    return model.eval(), data


@pytest.fixture
def small_model() -> Callable[[str], torch.nn.Module]:
    """A small model of that name in eval mode whose BatchNorm statistics are not the identity (so bn != conv)."""

    def build(name: str) -> torch.nn.Module:
        torch.manual_seed(2)
        model = build_model(name, SMALL[name]).eval()
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        return model

    return build
