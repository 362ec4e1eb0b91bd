"""Eval BatchNorm folded into the convolutions: the same scores, and the convolutions asked for kept as they are."""

import torch

from seecam.explain.fold import fold_batchnorm


def test_folded_model_gives_the_same_scores_and_keeps_a_named_convolution(small_model):
    model = small_model("se")
    x = torch.randn(4, 3, 32, 32)
    folded = fold_batchnorm(model, keep=("block2.conv",))
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-5)
    assert isinstance(folded.block1.bn, torch.nn.Identity) and isinstance(folded.block2.bn, torch.nn.BatchNorm2d)
    assert torch.equal(folded.block2.conv.weight, model.block2.conv.weight)
