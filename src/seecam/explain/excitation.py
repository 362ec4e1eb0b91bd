"""SE excitation analysis (Hu et al., 2018, Fig. 6): how much each SE block rescales each channel, per class.

For SE block b and class k: mean_k[c] = mean over test images of class k of the
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
from torch import nn

from seecam.explain.fold import fold_batchnorm
from seecam.explain.hooks import record
from seecam.normalize import Normalizer


@dataclass
class Excitation:
    """Per SE block: class-mean and within-class std of the excitation, both (classes, channels)."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]

    def summary(self) -> dict[str, float]:
        out = {}
        for block in self.mean:
            out[f"se_excitation/{block}/within_class_std"] = float(self.std[block].mean())
            out[f"se_excitation/{block}/between_class_std"] = float(self.mean[block].std(axis=0).mean())
        return out


def se_gates(model: nn.Module) -> list[str]:
    """Names of the SE gates (`blockN.se.gate`), in depth order."""
    return [name for name, _ in model.named_modules() if name.endswith(".se.gate")]


def excitation_by_class(
    model: nn.Module, images: torch.Tensor, labels: np.ndarray, num_classes: int, batch: int
) -> Excitation:
    """Class means and within-class spread of every SE gate's output over uint8 `images`."""
    gates = se_gates(model)
    normalize = Normalizer.for_model(model, images.device)
    model = fold_batchnorm(model)  # hooks sit on the SE gates only
    collected: dict[str, list[torch.Tensor]] = {gate: [] for gate in gates}
    with record(model, gates, gradients=False) as recording:
        for chunk in images.split(batch):
            model(normalize(chunk))
            for gate in gates:
                collected[gate].append(recording.activations[gate].cpu())
    mean, std = {}, {}
    for gate in gates:
        values = torch.cat(collected[gate]).numpy()
        block = gate.split(".")[0]
        per_class = [values[labels == k] for k in range(num_classes)]
        mean[block] = np.stack([v.mean(axis=0) if len(v) else np.full(values.shape[1], np.nan) for v in per_class])
        std[block] = np.stack([v.std(axis=0) if len(v) else np.full(values.shape[1], np.nan) for v in per_class])
    return Excitation(mean, std)
