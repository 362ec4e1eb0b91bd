"""Matplotlib figures, one module per stage; headless (Agg backend, no display needed)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from seecam.atomic import atomic_path  # noqa: E402

DPI = 110


def save_figure(fig: Figure, path: Path) -> None:
    """Write a PNG atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)


def close(fig: Figure) -> None:
    """Free a figure once saved or logged (pyplot keeps every open figure alive)."""
    plt.close(fig)
