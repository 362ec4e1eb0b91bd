"""Explanation figures: Grad-CAM gallery of every model, CAM methods, feature maps, top channels, gate excitation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from seecam.plots import plt

OVERLAY_ALPHA = 0.45


@dataclass
class Panel:
    """One model's view of one image: its normalised map, prediction and confidence."""

    cam: np.ndarray  # (H, W) in [0, 1]
    prediction: str
    confidence: float


def _hide_axes(ax) -> None:
    """No axis lines, ticks or labels. The y axis is hidden too, not only turned off: matplotlib lays out the y
    ticks of every titled Axes to place its title, drawn or not (half of explain's figure time, 4 models)."""
    ax.axis("off")
    ax.yaxis.set_visible(False)


def _image_axis(ax, image: np.ndarray, title: str, cam: np.ndarray | None = None, colour: str = "black") -> None:
    ax.imshow(image, interpolation="nearest")
    if cam is not None:
        ax.imshow(cam, cmap="jet", alpha=OVERLAY_ALPHA, vmin=0, vmax=1, interpolation="bilinear")
    ax.set_title(title, fontsize=8, color=colour)
    _hide_axes(ax)


def gradcam_gallery(
    images: np.ndarray, truths: list[str], panels: dict[str, list[Panel]], indices: list[int]
) -> Figure:
    """Rows: images. Columns: original | one Grad-CAM overlay per model, titled with prediction and confidence."""
    columns = 1 + len(panels)
    fig, axes = plt.subplots(len(images), columns, figsize=(2.3 * columns, 2.4 * len(images)), squeeze=False,
                             constrained_layout=True)
    for row, image in enumerate(images):
        _image_axis(axes[row, 0], image, f"#{indices[row]} true: {truths[row]}")
        for col, (name, model_panels) in enumerate(panels.items(), start=1):
            panel = model_panels[row]
            colour = "green" if panel.prediction == truths[row] else "red"
            _image_axis(axes[row, col], image, f"{name}: {panel.prediction} ({panel.confidence:.0%})", panel.cam,
                        colour)
    return fig


def cam_methods(image: np.ndarray, maps: dict[str, dict[str, np.ndarray]], title: str) -> Figure:
    """Rows: models. Columns: CAM methods, for one image."""
    names = list(maps)
    methods = list(maps[names[0]])
    fig, axes = plt.subplots(len(names), len(methods), figsize=(2.3 * len(methods), 2.4 * len(names)),
                             squeeze=False, constrained_layout=True)
    for row, name in enumerate(names):
        for col, method in enumerate(methods):
            _image_axis(axes[row, col], image, f"{name}: {method}", maps[name][method])
    fig.suptitle(title, fontsize=10)
    return fig


def feature_maps(activations: dict[str, np.ndarray], channels: int, title: str) -> Figure:
    """Rows: blocks. Columns: the first `channels` feature maps of one image."""
    fig, axes = plt.subplots(len(activations), channels, figsize=(1.3 * channels, 1.45 * len(activations)),
                             squeeze=False, constrained_layout=True)
    for row, (block, maps) in enumerate(activations.items()):
        for col in range(channels):
            ax = axes[row, col]
            if col < len(maps):
                ax.imshow(maps[col], cmap="viridis")
            ax.set_title(f"{block} ch{col}", fontsize=6)
            _hide_axes(ax)
    fig.suptitle(title, fontsize=9)
    return fig


def top_channels(image: np.ndarray, maps: np.ndarray, channels: list[int], title: str) -> Figure:
    """The tutorial's 'attention': the most active channels of the last block, upsampled over the image."""
    fig, axes = plt.subplots(1, 1 + len(channels), figsize=(2.3 * (1 + len(channels)), 2.5), constrained_layout=True)
    _image_axis(axes[0], image, "input")
    for ax, channel, heat in zip(axes[1:], channels, maps, strict=True):
        _image_axis(ax, image, f"channel {channel}", heat)
    fig.suptitle(title, fontsize=9)
    return fig


def se_excitation(excitations: dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray], str]],
                  classes: list[str]) -> Figure:
    """Per model with gates (name -> per-block class means and stds, and its gate's name: se, eca), two rows:
    top, mean excitation per channel, one line per class, per gated block; bottom, spread within vs between
    classes."""
    columns = max((len(mean) for mean, _, _ in excitations.values()), default=1)
    models = max(len(excitations), 1)  # no gated model still gives the stage's figure, blank
    fig, axes = plt.subplots(2 * models, columns, figsize=(4.6 * columns, 6.2 * models), squeeze=False,
                             constrained_layout=True, gridspec_kw={"height_ratios": [3, 2] * models})
    for row, (model, (mean, std, gate)) in enumerate(excitations.items()):
        _excitation_rows(axes[2 * row: 2 * row + 2], mean, std, classes,
                         f"{model}: " if len(excitations) > 1 else "", gate)
    for ax in axes.flat:
        if not ax.has_data():  # a model with fewer gated blocks, or none at all
            _hide_axes(ax)
    return fig


def _excitation_rows(axes: np.ndarray, mean: dict[str, np.ndarray], std: dict[str, np.ndarray], classes: list[str],
                     prefix: str, gate: str) -> None:
    blocks = list(mean)
    colours = plt.get_cmap("tab10")
    for col, block in enumerate(blocks):
        ax = axes[0, col]
        for k, name in enumerate(classes):
            ax.plot(mean[block][k], lw=0.9, color=colours(k % 10), label=name)
        ax.set(title=f"{prefix}{block}.{gate}: mean excitation by class", xlabel="channel", ylim=(0, 1))
        spread = axes[1, col]
        palette = [colours(k % 10) for k in range(len(classes))]
        spread.bar(np.arange(len(classes)), std[block].mean(axis=1), color=palette)
        spread.axhline(mean[block].std(axis=0).mean(), color="black", ls="--", lw=1, label="between-class std")
        spread.set_xticks(range(len(classes)), classes, rotation=60, fontsize=7)
        spread.set(title="within-class std (bars)", ylabel="std")
        spread.legend(fontsize=7)
    axes[0, 0].set_ylabel("excitation")
    axes[0, len(blocks) - 1].legend(fontsize=6, ncol=2, loc="lower right")


def mistakes(images: np.ndarray, cams: np.ndarray, titles: list[str], title: str) -> Figure:
    """A gallery of images with their CAMs (used for the gated models' most confident mistakes)."""
    count = max(len(images), 1)
    columns = min(count, 4)
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.7 * rows), squeeze=False,
                             constrained_layout=True)
    for ax in axes.flat:
        _hide_axes(ax)
    for ax, image, cam, text in zip(axes.flat, images, cams, titles, strict=False):
        _image_axis(ax, image, text, cam, "red")
    fig.suptitle(title, fontsize=10)
    return fig
