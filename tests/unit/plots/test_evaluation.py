"""The reliability diagram reads right: what is drawn is the number it stands for, and nothing covers it."""

import numpy as np
from matplotlib.patches import Rectangle

from seecam.metrics import Reliability
from seecam.plots.evaluation import reliability_diagrams


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


def test_the_per_class_legend_covers_no_bar():
    """Issue 26: the legend sat over the top of a bar; with every class near 100% it has nowhere inside to go."""
    from seecam.plots.evaluation import per_class_bars

    classes = [f"class {i}" for i in range(10)]
    figure = per_class_bars({"cnn": np.full(10, 0.99), "se": np.linspace(0.9, 1.0, 10)}, classes)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legend = (figure.legends or [figure.axes[0].get_legend()])[0].get_window_extent(renderer)
    drawn = bars(figure.axes[0])
    assert len(drawn) == 20
    assert not any(legend.overlaps(bar.get_window_extent(renderer)) for bar in drawn)
