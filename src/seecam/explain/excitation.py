"""SE excitation analysis (Hu et al., 2018, Fig. 6): how much each gate rescales each channel, per class.

Any kind whose blocks gate the channels with a sigmoid (SE's excitation, ECA's weights: models.gates) is
analysed alike. For gate b and class k: mean_k[c] = mean over test images of class k of the
gate's output s_c (in (0, 1)). The paper's finding to compare against: early
blocks excite channels alike for every class (class-agnostic features), later
blocks become class-specific. Two summaries per block make that a number:
`within_class_std` (mean over channels of the std inside a class) and
`between_class_std` (mean over channels of the std of the class means).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from seecam.explain.fold import fold_batchnorm
from seecam.explain.hooks import record
from seecam.models import Net, gates
from seecam.normalize import Normalizer


@dataclass
class Excitation:
    """Per gated block: class-mean and within-class std of the excitation, both (classes, channels)."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]

    def summary(self) -> dict[str, float]:
        out = {}
        for block in self.mean:
            out[f"se_excitation/{block}/within_class_std"] = float(self.std[block].mean())
            out[f"se_excitation/{block}/between_class_std"] = float(self.mean[block].std(axis=0).mean())
        return out


def excitation_by_class(
    model: Net, images: torch.Tensor, labels: np.ndarray, num_classes: int, batch: int
) -> Excitation:
    """Class means and within-class spread of every gate's output over uint8 `images`."""
    names = gates(model)
    normalize = Normalizer.for_model(model, images.device)
    model = fold_batchnorm(model)  # hooks sit on the gates only
    collected: dict[str, list[torch.Tensor]] = {gate: [] for gate in names}
    with record(model, names, gradients=False) as recording:
        for chunk in images.split(batch):
            model(normalize(chunk))
            for gate in names:
                collected[gate].append(recording.activations[gate].cpu())
    mean, std = {}, {}
    for gate in names:
        values = torch.cat(collected[gate]).numpy()
        block = gate.split(".")[0]
        per_class = [values[labels == k] for k in range(num_classes)]
        mean[block] = np.stack([v.mean(axis=0) if len(v) else np.full(values.shape[1], np.nan) for v in per_class])
        std[block] = np.stack([v.std(axis=0) if len(v) else np.full(values.shape[1], np.nan) for v in per_class])
    return Excitation(mean, std)
