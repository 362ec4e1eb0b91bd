"""SE excitation per class and block (the SE paper's Fig. 6) of a trained SE model."""

import torch

from seecam.explain.excitation import excitation_by_class
from seecam.inference import to_device
from seecam.models import gates

CPU = torch.device("cpu")


def test_excitation_per_class_and_block(trained):
    model, data = trained
    assert gates(model) == ["block1.se.gate", "block2.se.gate", "block3.se.gate"]
    excitation = excitation_by_class(model, to_device(data.test.images, CPU), data.test.labels, 10, batch=128)
    assert excitation.mean["block3"].shape == (10, 128) and excitation.std["block1"].shape == (10, 32)
    assert ((excitation.mean["block2"] > 0) & (excitation.mean["block2"] < 1)).all()
    summary = excitation.summary()
    assert set(summary) == {f"se_excitation/block{i}/{k}" for i in (1, 2, 3)
                            for k in ("within_class_std", "between_class_std")}
