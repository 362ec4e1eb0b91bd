"""Training curves of one or both models."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from seecam.plots import plt


def training_curves(histories: dict[str, list[dict[str, float]]]) -> Figure:
    """Loss and accuracy per epoch, train dashed and validation solid, one colour per model."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for colour, (name, history) in zip(("tab:blue", "tab:orange"), histories.items(), strict=False):
        epochs = [row["epoch"] for row in history]
        for ax, key in ((loss_ax, "loss"), (acc_ax, "acc")):
            ax.plot(epochs, [row[f"train_{key}"] for row in history], "--", color=colour, label=f"{name} train")
            ax.plot(epochs, [row[f"val_{key}"] for row in history], "-", color=colour, label=f"{name} val")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no tick at 1.5
    acc_ax.legend(fontsize=8)
    return fig
