"""Each model's colour, the same in every figure and in MLflow's UI: matplotlib's tab10, in params.yaml's order.

Plain data (no matplotlib): `seecam ui` colours the MLflow runs with it, and the CLI imports no plotting library.
params.MAX_MODELS keeps every model's colour distinct.
"""

from __future__ import annotations

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def model_colours(names: list[str]) -> dict[str, str]:
    """Each model's colour by its place in `names` (params.yaml's order: CNN blue, SE orange, ...)."""
    return {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(names)}
