"""The verdict's figure: each seed's accuracy of both models joined by a line, and the mean difference."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from seecam.plots import plt


def seeds_figure(result: dict[str, Any]) -> Figure:
    """Left: per-seed test accuracy, baseline → candidate (a rising line = the candidate won that seed).
    Right: per-seed differences (points), their mean with the 95% t interval and the bootstrap-over-seeds one."""
    base, cand = result["baseline"], result["candidate"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4), constrained_layout=True)
    for seed, row in result["per_seed"].items():
        left.plot([0, 1], [row[base] * 100, row[cand] * 100], "o-", color="tab:green" if row["diff"] > 0
                  else "tab:red" if row["diff"] < 0 else "tab:gray", alpha=0.7)
        left.annotate(f"seed {seed}", (1, row[cand] * 100), xytext=(6, 0), textcoords="offset points", fontsize=7)
    left.set_xticks([0, 1], [base, cand])
    left.set(xlim=(-0.3, 1.5), ylabel="test accuracy (%)", title=f"{result['seeds']} seeds, paired")
    diffs = [row["diff"] * 100 for row in result["per_seed"].values()]
    right.scatter([0] * len(diffs), diffs, color="tab:gray", alpha=0.7, label="seeds")
    mean = result["acc_diff_mean"] * 100
    for x, (low, high, label) in enumerate(
            [(result["acc_diff_t_low"], result["acc_diff_t_high"], "95% t interval"),
             (result["acc_diff_bootstrap_low"], result["acc_diff_bootstrap_high"], "bootstrap over seeds")], 1):
        right.errorbar([x], [mean], yerr=[[mean - low * 100], [high * 100 - mean]], fmt="o", capsize=5, label=label)
    right.axhline(0, color="k", lw=0.8, ls="--")
    right.set_xticks([0, 1, 2], ["per seed", "t", "bootstrap"])
    right.set(xlim=(-0.5, 2.5), ylabel=f"{cand} − {base} (points)", title="mean difference over seeds")
    right.legend(fontsize=7)
    return fig
