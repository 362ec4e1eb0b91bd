"""Side-by-side evaluation figures: confusion matrices, reliability diagrams, per-class accuracy."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from seecam.metrics import Reliability
from seecam.plots import plt


def confusion_matrices(matrices: dict[str, np.ndarray], classes: list[str]) -> Figure:
    """Row-normalised confusion matrices, one panel per model."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(5.2 * len(matrices), 4.6), constrained_layout=True)
    for ax, (name, matrix) in zip(np.atleast_1d(axes), matrices.items(), strict=True):
        rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        for (i, j), value in np.ndenumerate(rates):
            if value >= 0.05:
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if value > 0.5 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set(xlabel="predicted", ylabel="true", title=f"{name}: confusion (row-normalised)")
    return fig


def reliability_diagrams(bins: dict[str, Reliability]) -> Figure:
    """Per confidence bin: accuracy as a bar, the mean confidence as a black tick, the gap between them in red.

    Nothing is drawn over a bar, so each bar's top is the bin's accuracy (a translucent gap bar over it once
    made a dark band wherever accuracy exceeded confidence). The diagonal is perfect calibration.
    """
    fig, axes = plt.subplots(1, len(bins), figsize=(4.4 * len(bins), 4), constrained_layout=True, sharey=True)
    for ax, (name, rel) in zip(np.atleast_1d(axes), bins.items(), strict=True):
        filled = ~np.isnan(rel.accuracy)
        centres = ((rel.bin_edges[:-1] + rel.bin_edges[1:]) / 2)[filled]
        width = rel.bin_edges[1] - rel.bin_edges[0]
        accuracy, confidence = rel.accuracy[filled], rel.confidence[filled]
        ax.bar(centres, accuracy, width=width * 0.9, color="tab:blue", label="accuracy (bar)")
        ax.vlines(centres, accuracy, confidence, color="tab:red", lw=2, label="gap to confidence")
        ax.scatter(centres, confidence, marker="_", s=120, color="k", zorder=3, label="mean confidence")
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", title=f"{name}: ECE {rel.ece:.3f}")
    np.atleast_1d(axes)[0].set_ylabel("accuracy")
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8)  # over no bar
    return fig


def per_class_bars(accuracies: dict[str, np.ndarray], classes: list[str]) -> Figure:
    """Per-class test accuracy of each model, side by side."""
    fig, ax = plt.subplots(figsize=(10, 3.6), constrained_layout=True)
    width = 0.8 / len(accuracies)
    for i, (name, values) in enumerate(accuracies.items()):
        ax.bar(np.arange(len(classes)) + (i - (len(accuracies) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(range(len(classes)), classes, rotation=30, fontsize=8)
    ax.set(ylim=(0, 1), ylabel="test accuracy", title="Per-class accuracy")
    fig.legend(loc="outside right upper")  # beside the axes: bars near 100% left no free corner inside
    return fig
