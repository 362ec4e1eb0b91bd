"""From paired seeds to the verdict: the 95% t interval of the mean difference decides, the bootstraps and the
per-class and faithfulness intervals stand beside it, and two sentences say it, one in statistical terms and one
for a reader who is no statistician."""

from __future__ import annotations

import numpy as np

from seecam import stats
from seecam.titles import title
from seecam.verdict.record import Pair, Pooled, SeedResult, Verdict

FAITHFULNESS = ("deletion_auc", "insertion_auc")


def sentence(interval: stats.Interval, n: int, needed: int | None, baseline: str, candidate: str) -> str:
    """"SE better", "CNN better" or "not resolved with N seeds; about M seeds would resolve ..."."""
    if interval.excludes_zero():
        return f"{title(candidate if interval.mean > 0 else baseline)} better"
    if needed is None and interval.mean == 0:
        return f"not resolved with {n} seeds; the seeds show no difference to resolve"
    if needed is None:
        return (f"not resolved with {n} seeds; more than {stats.MAX_SEEDS:,} seeds would be needed to resolve a "
                "difference of this size at 80% power")
    return f"not resolved with {n} seeds; about {needed} seeds would resolve a difference of this size at 80% power"


def plain_sentence(interval: stats.Interval, wins: dict[str, int], needed: int | None, baseline: str,
                   candidate: str) -> str:
    """The verdict for a reader who is no statistician: who won how many seeds, and whether that is enough.

    "SE won 2 of 3 seeds; not enough to tell; about 15 seeds would" or "SE won 3 of 3 seeds, by 2.50 points
    on average, more than the seeds vary: SE is better". Same decision as `sentence`.
    """
    n = sum(wins.values())
    leader, other = (candidate, baseline) if wins[candidate] >= wins[baseline] else (baseline, candidate)
    tally = f"{title(leader)} won {wins[leader]} of {n} seeds"
    if wins["tie"]:
        tally += f", {title(other)} {wins[other]}, {wins['tie']} tied"
    if interval.excludes_zero():
        winner = candidate if interval.mean > 0 else baseline
        return (f"{tally}, by {abs(interval.mean) * 100:.2f} points on average, more than the seeds vary: "
                f"{title(winner)} is better")
    if needed is None and interval.mean == 0:
        return f"{tally}; the seeds show no difference to tell"
    if needed is None:
        return f"{tally}; not enough to tell, and the difference is too small for any practical number of seeds"
    return f"{tally}; not enough to tell; about {needed} seeds would"


def summarize(pairs: list[Pair], baseline: str, candidate: str, config_sha: str) -> Verdict:
    """Every number of the verdict from >= 2 seed pairs (accuracies as fractions)."""
    diffs = [p.candidate.metrics["test_acc"] - p.baseline.metrics["test_acc"] for p in pairs]
    t = stats.t_interval(diffs)
    boot = stats.bootstrap_mean_interval(diffs)
    dz = stats.cohens_dz(diffs)
    needed = stats.seeds_for_power(dz)
    wins = {candidate: sum(d > 0 for d in diffs), baseline: sum(d < 0 for d in diffs), "tie": diffs.count(0)}
    classes = sorted({k.split("/", 1)[1] for k in pairs[0].baseline.metrics if k.startswith("test_acc/")})
    per_class = {}
    for c in classes:
        key = f"test_acc/{c}"
        if all(key in p.baseline.metrics and key in p.candidate.metrics for p in pairs):
            per_class[c] = stats.median_interval([p.candidate.metrics[key] - p.baseline.metrics[key] for p in pairs])
    faithfulness = {
        side: {metric: stats.t_interval([getattr(p, role).metrics[f"explain/{metric}"] for p in pairs])
               for metric in FAITHFULNESS if all(f"explain/{metric}" in getattr(p, role).metrics for p in pairs)}
        for role, side in (("baseline", baseline), ("candidate", candidate))}
    return Verdict(
        config_sha=config_sha, baseline=baseline, candidate=candidate, seeds=len(pairs), wins=wins,
        plain=plain_sentence(t, wins, needed, baseline, candidate),
        sentence=sentence(t, len(pairs), needed, baseline, candidate),
        acc_diff_mean=t.mean, acc_diff_t_low=t.low, acc_diff_t_high=t.high,
        acc_diff_bootstrap_low=boot.low, acc_diff_bootstrap_high=boot.high,
        cohens_dz=dz, power=None if dz is None else stats.paired_t_power(dz, len(pairs)), seeds_for_80_power=needed,
        per_seed={str(p.seed): SeedResult(p.baseline.metrics["test_acc"], p.candidate.metrics["test_acc"], d,
                                          {baseline: p.baseline.run_id, candidate: p.candidate.run_id})
                  for p, d in zip(pairs, diffs, strict=True)},
        pooled_images=_pooled(pairs),
        experiments=sorted({run.experiment for p in pairs for run in (p.baseline, p.candidate) if run.experiment}),
        per_class_diff=per_class, faithfulness=faithfulness,
    )


def _pooled(pairs: list[Pair]) -> Pooled:
    """The per-image paired bootstrap over all seeds, or why it was skipped."""
    vectors = [(p.baseline.correct, p.candidate.correct) for p in pairs]
    if any(b is None or c is None for b, c in vectors):
        return Pooled(skipped="some runs have no evaluate/test_correct.txt (evaluated before seecam logged it)")
    if len({len(b) for b, _ in vectors} | {len(c) for _, c in vectors}) != 1:
        return Pooled(skipped="the runs were evaluated on test sets of different sizes")
    interval = stats.pooled_paired_bootstrap(np.array([c.astype(float) - b.astype(float) for b, c in vectors]))
    return Pooled(interval.mean, interval.low, interval.high, len(vectors[0][0]))
