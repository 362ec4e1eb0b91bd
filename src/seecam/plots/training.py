"""Training curves of every model: a colour per model, a line style per split."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from seecam.colours import model_colours
from seecam.history import EpochRow
from seecam.plots import plt

SPLITS = {"train": "--", "val": "-"}  # line style per split; the legend names them once, not once per model
SPLIT_NAMES = {"train": "train", "val": "validation"}


def training_curves(histories: dict[str, list[EpochRow]]) -> Figure:
    """Loss and accuracy per epoch, train dashed and validation solid, one colour per model (model_colours).

    The legend has one entry per model and one per line style, beside the axes: it grows by one line per model
    and never covers a curve.
    """
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    colours = model_colours(list(histories))
    for name, history in histories.items():
        epochs = [row.epoch for row in history]
        for ax, key in ((loss_ax, "loss"), (acc_ax, "acc")):
            for split, style in SPLITS.items():
                values = [getattr(row, f"{split}_{key}") for row in history]
                ax.plot(epochs, values, style, color=colours[name], gid=name)
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no tick at 1.5
    handles = [Line2D([], [], color=colour) for colour in colours.values()]
    handles += [Line2D([], [], color="grey", linestyle=style) for style in SPLITS.values()]
    fig.legend(handles, [*colours, *SPLIT_NAMES.values()], loc="outside right upper", fontsize=8)
    return fig
