"""The statistics of the verdict against hand-computed values, with scipy as an oracle (tests only)."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from seecam import stats

# The issue's five real-CIFAR seeds: SE − CNN in points.
ISSUE_DIFFS = [-1.19, 1.14, 4.00, -0.73, 1.52]


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 30, 101])
def test_t_quantile_matches_scipy(df):
    assert stats.t_quantile(0.95, df) == pytest.approx(scipy_stats.t.ppf(0.975, df), rel=1e-9)


def test_t_interval_by_hand():
    # mean 0.948, s = 2.0648..., t_{0.975,4} = 2.776445: half width = 2.776445 * s / sqrt(5)
    interval = stats.t_interval(ISSUE_DIFFS)
    s = math.sqrt(sum((d - 0.948) ** 2 for d in ISSUE_DIFFS) / 4)
    half = 2.7764451051977934 * s / math.sqrt(5)
    assert interval.mean == pytest.approx(0.948)
    assert (interval.low, interval.high) == pytest.approx((0.948 - half, 0.948 + half))
    assert (round(interval.low, 1), round(interval.high, 1)) == (-1.6, 3.5)  # the issue's "about -1.6 to +3.5"
    assert not interval.excludes_zero()


def test_exactly_two_seeds_uses_df_1():
    interval = stats.t_interval([1.0, 3.0])  # mean 2, s = sqrt(2), half = 12.7062 * sqrt(2) / sqrt(2)
    assert (interval.low, interval.high) == pytest.approx((2 - 12.706204736, 2 + 12.706204736))


def test_cohens_dz_by_hand():
    assert stats.cohens_dz([1.0, 3.0]) == pytest.approx(2 / math.sqrt(2))
    assert stats.cohens_dz(ISSUE_DIFFS) == pytest.approx(0.948 / np.std(ISSUE_DIFFS, ddof=1))


def test_identical_accuracies_do_not_crash():
    zeros = [0.0, 0.0, 0.0]
    interval = stats.t_interval(zeros)
    assert (interval.mean, interval.low, interval.high) == (0.0, 0.0, 0.0)
    assert not interval.excludes_zero()
    assert stats.cohens_dz(zeros) == 0.0
    assert stats.seeds_for_power(0.0) is None  # no difference to resolve
    assert stats.bootstrap_mean_interval(zeros) == stats.Interval(0.0, 0.0, 0.0)


def test_constant_nonzero_difference_is_resolved_with_undefined_effect_size():
    interval = stats.t_interval([0.5, 0.5])
    assert interval == stats.Interval(0.5, 0.5, 0.5) and interval.excludes_zero()
    assert stats.cohens_dz([0.5, 0.5]) is None
    assert stats.seeds_for_power(None) == 2


def test_power_hand_value():
    # d_z = 1, n = 10: t_c = 2.262157, δ = sqrt(10); Φ((3.162278 - 2.262157) / sqrt(1 + 2.262157² / 18))
    expected = 0.5 * (1 + math.erf((math.sqrt(10) - 2.262157163) / math.sqrt(1 + 2.262157163**2 / 18) / math.sqrt(2)))
    assert stats.paired_t_power(1.0, 10) == pytest.approx(expected, rel=1e-6)


def _exact_power(dz: float, n: int) -> float:
    critical = scipy_stats.t.ppf(0.975, n - 1)
    delta = dz * math.sqrt(n)
    return 1 - scipy_stats.nct.cdf(critical, n - 1, delta) + scipy_stats.nct.cdf(-critical, n - 1, delta)


@pytest.mark.parametrize("dz", [0.2, 0.37, 0.5, 0.8, 1.0, 1.5, 2.0, 3.0, -0.8])
def test_power_approximation_against_noncentral_t(dz):
    for n in (2, 3, 5, 10, 30):
        if _exact_power(abs(dz), n) < 0.999:  # scipy's nct returns nan far out in the tail
            assert stats.paired_t_power(dz, n) == pytest.approx(_exact_power(abs(dz), n), abs=0.11)
    exact_seeds = next(n for n in range(2, 1000) if _exact_power(abs(dz), n) >= 0.8)
    assert exact_seeds <= stats.seeds_for_power(dz) <= exact_seeds + 1


def test_issue_example_needs_about_40_seeds():
    # d_z = 0.948 / 2.0655 = 0.459: five seeds resolve nothing; ~40 would resolve a difference this size
    dz = stats.cohens_dz(ISSUE_DIFFS)
    exact_seeds = next(n for n in range(2, 1000) if _exact_power(dz, n) >= 0.8)
    assert stats.seeds_for_power(dz) == exact_seeds == 40


def test_large_seed_counts_use_the_normal_formula():
    # ((1.959964 + 0.841621) / 0.1)² = 784.9 -> 785
    assert stats.seeds_for_power(0.1) == 785
    assert stats.seeds_for_power(0.01) is None  # more than MAX_SEEDS


def test_percentile_bootstrap_contains_the_estimate_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small = (rng.random(200) < 0.7).astype(float)
    large = (rng.random(20000) < 0.7).astype(float)
    low, high = stats.percentile_bootstrap(small, 1000, seed=0)
    assert low < small.mean() < high
    low_l, high_l = stats.percentile_bootstrap(large, 300, seed=0)
    assert low_l < large.mean() < high_l and (high_l - low_l) < (high - low) / 5
    assert stats.percentile_bootstrap(small, 1000, seed=0) == (low, high)  # seeded


def test_percentile_bootstrap_draws_what_evaluate_always_drew():
    """evaluate's metrics.json must not change by a bit now that its bootstrap is the verdict's too: these are the
    intervals it computed before (its defaults, 1,000 resamples with seed 0, and a count no multiple of the chunk)."""
    rng = np.random.default_rng(29)
    correct = (rng.random(10_000) < 0.75).astype(float)
    other = (rng.random(10_000) < 0.77).astype(float)
    assert stats.percentile_bootstrap(correct, 1000, 0) == (0.7499975, 0.7667025000000001)
    assert stats.percentile_bootstrap(other - correct, 1000, 0) == (0.0034975000000000023, 0.027)
    assert stats.percentile_bootstrap(correct[:300], 250, 7) == (0.7466666666666667, 0.8418333333333334)


def test_bootstrap_over_seeds_stays_inside_the_range_of_values():
    interval = stats.bootstrap_mean_interval(ISSUE_DIFFS)
    assert min(ISSUE_DIFFS) <= interval.low < 0.948 < interval.high <= max(ISSUE_DIFFS)


def test_pooled_paired_bootstrap_resamples_images():
    differences = np.zeros((3, 100))
    differences[:, :10] = 1.0  # the candidate alone is right on 10 images in every seed: +0.10
    interval = stats.pooled_paired_bootstrap(differences, samples=500)
    assert interval.mean == pytest.approx(0.10)
    assert 0.03 < interval.low < 0.10 < interval.high < 0.17


@pytest.mark.parametrize("n", [2, 3, 5, 6, 10, 30])
def test_median_interval_is_the_sign_test_interval_of_order_statistics(n):
    """Per-class differences over few seeds: bounded by the seeds' own values, coverage checked against scipy."""
    values = list(np.random.default_rng(n).normal(0, 0.3, n))
    interval = stats.median_interval(values)
    ordered = sorted(values)
    k = max([j for j in range(1, n // 2 + 1) if 1 - 2 * scipy_stats.binom.cdf(j - 1, n, 0.5) >= 0.95] or [1])
    assert (interval.low, interval.high) == (ordered[k - 1], ordered[n - k])
    assert interval.coverage == pytest.approx(1 - 2 * scipy_stats.binom.cdf(k - 1, n, 0.5))
    assert interval.median == pytest.approx(float(np.median(values)))
    assert min(values) <= interval.low <= interval.high <= max(values)


def test_median_interval_of_three_seeds_is_their_range_at_75_percent():
    interval = stats.median_interval([0.3, -0.4, 0.5])  # a t interval over these reaches about ±1.1
    assert (interval.low, interval.high, interval.coverage) == (-0.4, 0.5, 0.75)
    assert not interval.resolved()
    assert not stats.median_interval([0.1, 0.2, 0.3]).resolved()  # all three agree, but only at 75%
    assert stats.median_interval([0.1, 0.2, 0.3, 0.1, 0.2, 0.3]).resolved()  # six seeds reach 96.9%
