"""Statistics of seecam's comparisons: t interval, percentile bootstrap, Cohen's d_z, paired-t power, sign test.

The t, noncentral t and binomial distributions are scipy.stats' own: nothing here approximates them. It is
imported where they are used (it takes about a second): the evaluate and report stages, which use only the
bootstrap and the types, start without it.

The verdict's unit of replication is the training seed: each seed trains both
models on the same data, so the per-seed differences d_i = acc_candidate - acc_baseline
are paired and the test is a one-sample t on them (n seeds, df = n - 1).

- Mean and 95% t interval: mean(d) ± t_{0.975, n-1} · s / √n, with s the sample sd (ddof = 1).
- Cohen's d_z = mean(d) / s (the paired-design effect size).
- Power of the two-sided paired t test at level α with n seeds and effect d_z: P(|T| > t_c) for T noncentral
  t with df = n − 1 and noncentrality δ = |d_z|·√n, t_c = t_{1−α/2, n−1}, both tails. "About M seeds" is the
  smallest n with power >= 80%; it is computed from the observed d_z, itself noisy with few seeds.
- Percentile bootstrap of a mean (evaluate's test-image intervals, the verdict's second opinions): the
  (1 − c)/2 and (1 + c)/2 percentiles of the means of resamples drawn with replacement.
- Per-class differences (few seeds, values bounded to [-1, 1]): the median with the sign test's
  distribution-free interval [x_(k), x_(n+1-k)] of the sorted values, k the largest with coverage
  1 − 2·P(Bin(n, ½) ≤ k − 1) >= 95%; below 6 seeds no k reaches 95% and the interval is [min, max] at
  its own coverage 1 − 2^(1−n) (75% for 3 seeds). It never leaves the seeds' own values, where a t interval
  over 3 seeds (t = 4.30) reaches past ±100 points.
- Zero spread (every seed gives the same difference): the interval is [mean, mean]; d_z is 0 when the
  mean is 0 and undefined (None) otherwise, since no finite effect size describes a noiseless difference.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
POWER = 0.8
MAX_SEEDS = 10_000  # the power search stops here: a difference this small is not worth resolving by seeds
# Resamples drawn at once: 100 x 10,000 test images is 8 MB of indices, where evaluate's largest setting
# (100,000 resamples) drawn at once would be 8 GB. The draws are the same either way (one generator stream).
BOOTSTRAP_CHUNK = 100


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class MedianInterval:
    median: float
    low: float
    high: float
    coverage: float  # the probability that [low, high] holds the true median

    def resolved(self, confidence: float = CONFIDENCE) -> bool:
        """The interval excludes 0 at the required confidence (never with fewer than 6 seeds at 95%)."""
        return self.coverage >= confidence and (self.low > 0 or self.high < 0)


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> MedianInterval:
    """[x_(k), x_(n+1-k)], k the largest with 1 − 2·P(Bin(n, ½) ≤ k − 1) >= confidence, else k = 1 (module doc)."""
    import scipy.stats

    x = sorted(float(v) for v in values)
    n = len(x)

    def coverage(k: int) -> float:
        return float(1 - 2 * scipy.stats.binom.cdf(k - 1, n, 0.5))

    k = max([j for j in range(1, n // 2 + 1) if coverage(j) >= confidence] or [1])
    return MedianInterval(float(np.median(x)), x[k - 1], x[n - k], coverage(k))


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """mean ± t_{(1+c)/2, n-1} · s/√n over n >= 2 values."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        raise ValueError("a t interval needs at least 2 values")
    import scipy.stats

    mean = float(x.mean())
    quantile = float(scipy.stats.t.ppf((1 + confidence) / 2, len(x) - 1))
    half = quantile * float(x.std(ddof=1)) / math.sqrt(len(x))
    return Interval(mean, mean - half, mean + half)


def percentile_bootstrap(values: np.ndarray, samples: int, seed: int,
                         confidence: float = CONFIDENCE) -> tuple[float, float]:
    """(low, high): the (1−c)/2 and (1+c)/2 percentiles of the means of `samples` resamples of `values` with
    replacement, drawn from numpy's default_rng(seed) BOOTSTRAP_CHUNK resamples at a time.

    Pass a paired difference (candidate − baseline on the same items) to compare two models.
    """
    x = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = np.concatenate([
        x[rng.integers(0, len(x), (min(BOOTSTRAP_CHUNK, samples - start), len(x)))].mean(axis=1)
        for start in range(0, samples, BOOTSTRAP_CHUNK)
    ])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_mean_interval(values: Sequence[float], samples: int = 10_000, seed: int = 0,
                            confidence: float = CONFIDENCE) -> Interval:
    """Percentile interval of the mean when the values themselves (the seeds) are resampled with replacement.

    With few seeds it only takes a handful of distinct values and is too narrow; it is a second opinion that
    assumes nothing about normality, not a replacement for the t interval.
    """
    x = np.asarray(values, dtype=float)
    return Interval(float(x.mean()), *percentile_bootstrap(x, samples, seed, confidence))


def pooled_paired_bootstrap(differences: np.ndarray, samples: int = 2_000, seed: int = 0,
                            confidence: float = CONFIDENCE) -> Interval:
    """Interval of the mean per-image difference over seeds x images, resampling test images (columns).

    `differences[s, i]` = candidate correct − baseline correct on image i for seed s. The same images are
    drawn for every seed, so this measures test-set noise of the seed-averaged models, not seed noise.
    """
    per_image = np.asarray(differences, dtype=float).mean(axis=0)
    return Interval(float(per_image.mean()), *percentile_bootstrap(per_image, samples, seed, confidence))


def cohens_dz(differences: Sequence[float]) -> float | None:
    """mean(d) / sd(d) (ddof = 1); 0 for all-zero differences, None for a constant non-zero difference."""
    x = np.asarray(differences, dtype=float)
    sd = float(x.std(ddof=1))
    if sd == 0:
        return 0.0 if float(x.mean()) == 0 else None
    return float(x.mean()) / sd


def paired_t_power(dz: float, n: int, alpha: float = 1 - CONFIDENCE) -> float:
    """P(T_δ > t_c) + P(T_δ < −t_c), T_δ noncentral t with df = n − 1 and δ = |d_z|·√n, t_c = t_{1−α/2, n−1}: the
    power of the two-sided paired t test (module docstring).

    The far tail is taken as P(T_−δ > t_c), its mirror image: scipy's nct.cdf(−t_c, df, δ) returns NaN once it
    underflows (δ ≳ 10), where nct.sf of the mirror returns the value or 0.
    """
    import scipy.stats

    df, delta = n - 1, abs(dz) * math.sqrt(n)
    critical = scipy.stats.t.ppf(1 - alpha / 2, df)
    return float(scipy.stats.nct.sf(critical, df, delta) + scipy.stats.nct.sf(critical, df, -delta))


def seeds_for_power(dz: float | None, power: float = POWER) -> int | None:
    """Smallest n >= 2 whose paired-t power reaches `power`; None if there is no difference (d_z = 0) or
    it would take more than MAX_SEEDS; 2 for a noiseless difference (d_z undefined).

    Power grows with n, so a bisection over 2..MAX_SEEDS finds it in 14 evaluations.
    """
    if dz is None:
        return 2
    if dz == 0:
        return None
    seeds = range(2, MAX_SEEDS + 1)
    first = bisect.bisect_left(seeds, True, key=lambda n: paired_t_power(dz, n) >= power)
    return seeds[first] if first < len(seeds) else None
