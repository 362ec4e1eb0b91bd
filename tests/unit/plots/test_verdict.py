"""seeds.png reads right: each seed labelled where the labels cannot overlap, and a legend that counts the wins."""

from matplotlib.text import Text

from seecam.plots.verdict import seeds_figure
from seecam.verdict.record import Pooled, SeedResult, Verdict


def verdict_of(per_seed_accuracies: dict[int, tuple[float, float]]) -> Verdict:
    """A verdict with these (cnn, se) accuracies per seed and only the numbers the figure draws."""
    per_seed = {str(s): SeedResult(c, e, e - c, {}) for s, (c, e) in per_seed_accuracies.items()}
    return Verdict(config_sha="abc", baseline="cnn", candidate="se", seeds=len(per_seed), wins={}, plain="",
                   sentence="", acc_diff_mean=0.0, acc_diff_t_low=-0.01, acc_diff_t_high=0.01,
                   acc_diff_bootstrap_low=-0.005, acc_diff_bootstrap_high=0.005, cohens_dz=None, power=None,
                   seeds_for_80_power=None, per_seed=per_seed, pooled_images=Pooled(skipped="not drawn"),
                   experiments=[], per_class_diff={}, faithfulness={})


def test_seed_labels_never_overlap_and_the_lines_have_a_legend(tmp_path):
    """Issue 20: near-chance seeds printed their labels on top of each other, and the lines had no legend."""
    figure = seeds_figure(verdict_of({0: (0.100, 0.101), 1: (0.100, 0.102), 2: (0.101, 0.100),
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
    figure.savefig(tmp_path / "seeds.png")
