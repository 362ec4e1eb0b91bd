"""The verdict's figure: each seed's accuracy of both models joined by a line, and the mean difference."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from seecam.plots import plt
from seecam.titles import title
from seecam.verdict.record import Verdict

LABEL_GAP = 0.06  # axes fraction between two seed labels: more than a 7-pt line on the 4-inch figure
MAX_LABELS = 16  # more seeds than this: the legend's counts say it, labels would not fit


def spread(positions: list[float], gap: float = LABEL_GAP) -> list[float]:
    """Label heights (axes fraction, 0..1) moved apart by at least `gap`, each as near its point as that allows."""
    order = sorted(range(len(positions)), key=positions.__getitem__)
    placed = [positions[i] for i in order]
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    overflow = placed[-1] - 1 if placed else 0
    if overflow > 0:  # pushed past the top: shift down as far as the bottom allows
        placed = [y - min(overflow, placed[0]) for y in placed]
    out = [0.0] * len(positions)
    for i, y in zip(order, placed, strict=True):
        out[i] = y
    return out


def seeds_figure(verdict: Verdict) -> Figure:
    """Left: per-seed test accuracy, baseline → candidate (a rising line = the candidate won that seed), each
    seed labelled, labels moved apart when accuracies are close; the legend counts the seeds each model won.
    Right: per-seed differences (points), their mean with the 95% t interval and the bootstrap-over-seeds one."""
    base, cand = verdict.baseline, verdict.candidate
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4), constrained_layout=True)
    outcomes = {"won_candidate": ("tab:green", f"{title(cand)} won"), "won_baseline": ("tab:red", f"{title(base)} won"),
                "tie": ("tab:gray", "tie")}
    counts = dict.fromkeys(outcomes, 0)
    rows = verdict.per_seed
    values = [v * 100 for row in rows.values() for v in (row.baseline, row.candidate)]
    pad = max(0.5, 0.1 * (max(values) - min(values)))
    low, high = min(values) - pad, max(values) + pad
    for row in rows.values():
        outcome = "won_candidate" if row.diff > 0 else "won_baseline" if row.diff < 0 else "tie"
        counts[outcome] += 1
        left.plot([0, 1], [row.baseline * 100, row.candidate * 100], "o-", color=outcomes[outcome][0], alpha=0.7)
    if len(rows) <= MAX_LABELS:
        wanted = [(row.candidate * 100 - low) / (high - low) for row in rows.values()]
        for (seed, row), y in zip(rows.items(), spread(wanted), strict=True):
            left.annotate(f"seed {seed}", (1, row.candidate * 100), xytext=(1.12, y),
                          textcoords=("data", "axes fraction"), va="center", fontsize=7,
                          arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.6"})
    left.legend([Line2D([], [], color=outcomes[k][0], marker="o") for k in outcomes if counts[k]],
                [f"{outcomes[k][1]} ({counts[k]})" for k in outcomes if counts[k]], fontsize=7, loc="upper left")
    left.set_xticks([0, 1], [base, cand])
    left.set(xlim=(-0.3, 1.6), ylim=(low, high), ylabel="test accuracy (%)", title=f"{verdict.seeds} seeds, paired")
    diffs = [row.diff * 100 for row in rows.values()]
    right.scatter([0] * len(diffs), diffs, color="tab:gray", alpha=0.7, label="seeds")
    mean = verdict.acc_diff_mean * 100
    for x, (low_, high_, label) in enumerate(
            [(verdict.acc_diff_t_low, verdict.acc_diff_t_high, "95% t interval"),
             (verdict.acc_diff_bootstrap_low, verdict.acc_diff_bootstrap_high, "bootstrap over seeds")], 1):
        right.errorbar([x], [mean], yerr=[[mean - low_ * 100], [high_ * 100 - mean]], fmt="o", capsize=5, label=label)
    right.axhline(0, color="k", lw=0.8, ls="--")
    right.set_xticks([0, 1, 2], ["per seed", "t", "bootstrap"])
    right.set(xlim=(-0.5, 2.5), ylabel=f"{cand} − {base} (points)", title="mean difference over seeds")
    right.legend(fontsize=7)
    return fig
