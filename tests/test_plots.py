"""The figures read right: what is drawn is the number it stands for, and nothing covers it."""

import numpy as np
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from seecam.metrics import Reliability
from seecam.plots.evaluation import reliability_diagrams
from seecam.plots.verdict import seeds_figure


def bars(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() > 0]


def test_reliability_bars_are_the_accuracy_and_nothing_translucent_covers_them():
    """Issue 20: a translucent "gap" bar drawn over the accuracy bar made a dark band and a wrong-looking height."""
    edges = np.linspace(0, 1, 6)
    accuracy = np.array([np.nan, 0.50, 0.30, 0.90, 0.95])  # above and below the confidence, one empty bin
    confidence = np.array([np.nan, 0.30, 0.50, 0.70, 0.90])
    figure = reliability_diagrams({"cnn": Reliability(edges, confidence, accuracy, np.array([0, 5, 5, 5, 5]), 0.1)})
    ax = figure.axes[0]
    drawn = bars(ax)
    assert sorted(round(b.get_height(), 6) for b in drawn) == [0.3, 0.5, 0.9, 0.95]
    assert all(b.get_alpha() in (None, 1) for b in drawn)
    for i, a in enumerate(drawn):  # no bar lies over another
        for b in drawn[i + 1:]:
            assert a.get_x() + a.get_width() <= b.get_x() or b.get_x() + b.get_width() <= a.get_x()
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    assert sorted(labels) == ["accuracy (bar)", "gap to confidence", "mean confidence"]


def verdict_result(per_seed_accuracies: dict[int, tuple[float, float]]) -> dict:
    per_seed = {str(s): {"cnn": c, "se": e, "diff": e - c} for s, (c, e) in per_seed_accuracies.items()}
    return {"baseline": "cnn", "candidate": "se", "seeds": len(per_seed), "per_seed": per_seed,
            "acc_diff_mean": 0.0, "acc_diff_t_low": -0.01, "acc_diff_t_high": 0.01,
            "acc_diff_bootstrap_low": -0.005, "acc_diff_bootstrap_high": 0.005}


def test_seed_labels_never_overlap_and_the_lines_have_a_legend():
    """Issue 20: near-chance seeds printed their labels on top of each other, and the lines had no legend."""
    figure = seeds_figure(verdict_result({0: (0.100, 0.101), 1: (0.100, 0.102), 2: (0.101, 0.100),
                                          3: (0.099, 0.1005), 4: (0.100, 0.100)}))
    left = figure.axes[0]
    figure.canvas.draw()  # the final layout
    renderer = figure.canvas.get_renderer()
    labels = [t for t in left.texts if t.get_text().startswith("seed ")]
    for label in labels:
        label.update_positions(renderer)
    boxes = [Text.get_window_extent(t, renderer) for t in labels]  # the text alone, not its connector
    assert len(boxes) == 5
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)
    assert left.get_legend() is not None
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["SE won (3)", "CNN won (1)", "tie (1)"]
    figure.savefig("/tmp/x/seeds.png")
