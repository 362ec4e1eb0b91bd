"""ECA, Efficient Channel Attention (Wang et al., CVPR 2020): SE's channel gate with a 1-D convolution instead of
SE's two fully connected layers.

    w = sigmoid(conv1d_k(avgpool(x)))  across the channels, no bias;  out = x * w (the block rescales after
    pooling, as for SE: models.GatedMaxPool)

Each channel's weight sees its k neighbours in the channel order, with no dimensionality reduction; k grows with
the block's width C (params.EcaParams.kernel_size, the paper's Eq. 12), so a block adds k weights, not SE's
2 C^2 / r.
"""

from __future__ import annotations

import torch
from torch import nn


class EfficientChannelAttention(nn.Module):
    """The channel weights sigmoid(conv1d_k(mean over h, w of x)), the convolution across channels with zero
    padding k // 2.

    The sigmoid is a module (`gate`), as in SE, so a forward hook on `blockN.eca.gate` captures the per-channel
    weights (B x C) for the explain stage.
    """

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = x.mean(dim=(2, 3))[:, None, :]  # B x 1 x C: the channels are the sequence
        return self.gate(self.conv(squeezed)[:, 0])
