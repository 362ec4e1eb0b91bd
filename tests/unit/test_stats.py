"""The statistics of seecam's comparisons against printed tables, exact sums, simulation and pinned draws."""

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as scipy_stats

from seecam import stats

# The issue's five real-CIFAR seeds: SE − CNN in points.
ISSUE_DIFFS = [-1.19, 1.14, 4.00, -0.73, 1.52]
# t_{0.975, df} as printed in any t table (three decimals)
T_TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 30: 2.042}


@pytest.mark.parametrize("df", T_TABLE)
def test_the_t_interval_uses_the_975_quantile_of_n_minus_1_degrees_of_freedom(df):
    values = np.random.default_rng(df).normal(0, 1, df + 1)
    interval = stats.t_interval(values)
    standard_error = np.std(values, ddof=1) / math.sqrt(df + 1)
    assert (interval.high - interval.mean) / standard_error == pytest.approx(T_TABLE[df], abs=5e-4)


def test_t_interval_by_hand():
    # mean 0.948, s = 2.0648..., t_{0.975,4} = 2.7764451051977934: half width = t · s / sqrt(5)
    interval = stats.t_interval(ISSUE_DIFFS)
    s = math.sqrt(sum((d - 0.948) ** 2 for d in ISSUE_DIFFS) / 4)
    half = 2.7764451051977934 * s / math.sqrt(5)
    assert interval.mean == pytest.approx(0.948, rel=1e-12)
    assert (interval.low, interval.high) == pytest.approx((0.948 - half, 0.948 + half), rel=1e-12)
    assert (round(interval.low, 1), round(interval.high, 1)) == (-1.6, 3.5)  # the issue's "about -1.6 to +3.5"
    assert not interval.excludes_zero()


def test_exactly_two_seeds_uses_df_1():
    interval = stats.t_interval([1.0, 3.0])  # mean 2, s = sqrt(2): half = t_{0.975,1} = tan(0.475π)
    half = math.tan(0.475 * math.pi)  # the Cauchy quantile: t with 1 df in closed form
    assert (interval.low, interval.high) == pytest.approx((2 - half, 2 + half), rel=1e-12)


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


@pytest.mark.parametrize("n", [2, 3, 5, 30])
def test_power_without_an_effect_is_the_level_from_both_tails(n):
    """With d_z = 0 the test rejects at its level α = 5%, half in each tail: a power that left out the far
    tail would say 2.5%."""
    assert stats.paired_t_power(0.0, n) == pytest.approx(0.05, rel=1e-9)


@pytest.mark.parametrize(("dz", "n"), [(0.3, 3), (-0.5, 5), (1.0, 10), (1.5, 2), (0.459, 40)])
def test_power_is_the_rejection_rate_of_simulated_paired_t_tests(dz, n):
    """40,000 simulated experiments of n seeds with normal differences of effect d_z, each tested two-sided
    at 5%: the share rejected is the power, within 4 standard errors of the simulation."""
    experiments = 40_000
    differences = np.random.default_rng(n).normal(dz, 1.0, (experiments, n))
    rejected = scipy_stats.ttest_1samp(differences, 0.0, axis=1).pvalue < 0.05
    power = stats.paired_t_power(dz, n)
    assert rejected.mean() == pytest.approx(power, abs=4 * math.sqrt(power * (1 - power) / experiments))


@pytest.mark.parametrize("dz", [0.1, 0.2, 0.37, 0.5, 0.8, 1.0, 1.5, 2.0, 3.0, 30.0, -0.8])
def test_seeds_for_power_is_the_smallest_seed_count_reaching_80_percent(dz):
    needed = stats.seeds_for_power(dz)
    assert stats.paired_t_power(dz, needed) >= 0.8
    assert needed == 2 or stats.paired_t_power(dz, needed - 1) < 0.8


def test_issue_example_needs_about_40_seeds():
    # d_z = 0.948 / 2.0655 = 0.459: five seeds resolve nothing; ~40 would resolve a difference this size
    dz = stats.cohens_dz(ISSUE_DIFFS)
    assert stats.paired_t_power(dz, 5) < 0.2
    assert stats.seeds_for_power(dz) == 40


def test_a_difference_too_small_to_resolve_by_seeds_needs_none():
    # ((z_0.975 + z_0.8) / d_z)² = 78,489 seeds for d_z = 0.01: past MAX_SEEDS
    assert stats.paired_t_power(0.01, stats.MAX_SEEDS) < 0.8
    assert stats.seeds_for_power(0.01) is None


def test_percentile_bootstrap_draws_what_evaluate_always_drew():
    """evaluate's metrics.json must not change by a bit now that its bootstrap is the verdict's too: these are the
    intervals it computed before (its defaults, 1,000 resamples with seed 0, and a count no multiple of the chunk)."""
    rng = np.random.default_rng(29)
    correct = (rng.random(10_000) < 0.75).astype(float)
    other = (rng.random(10_000) < 0.77).astype(float)
    assert stats.percentile_bootstrap(correct, 1000, 0) == (0.7499975, 0.7667025000000001)
    assert stats.percentile_bootstrap(other - correct, 1000, 0) == (0.0034975000000000023, 0.027)
    assert stats.percentile_bootstrap(correct[:300], 250, 7) == (0.7466666666666667, 0.8418333333333334)


def test_percentile_bootstrap_contains_the_estimate_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small = (rng.random(200) < 0.7).astype(float)
    large = (rng.random(20000) < 0.7).astype(float)
    low, high = stats.percentile_bootstrap(small, 1000, seed=0)
    assert low < small.mean() < high
    low_l, high_l = stats.percentile_bootstrap(large, 300, seed=0)
    assert low_l < large.mean() < high_l and (high_l - low_l) < (high - low) / 5
    assert stats.percentile_bootstrap(small, 1000, seed=0) == (low, high)  # seeded


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
    """Per-class differences over few seeds: bounded by the seeds' own values; the coverage is the exact
    binomial sum 1 − 2·Σ_{i<k} C(n, i) / 2^n."""
    values = list(np.random.default_rng(n).normal(0, 0.3, n))
    interval = stats.median_interval(values)

    def coverage(k: int) -> Fraction:
        return 1 - 2 * Fraction(sum(math.comb(n, i) for i in range(k)), 2**n)

    k = max([j for j in range(1, n // 2 + 1) if coverage(j) >= Fraction(95, 100)] or [1])
    ordered = sorted(values)
    assert (interval.low, interval.high) == (ordered[k - 1], ordered[n - k])
    assert interval.coverage == pytest.approx(float(coverage(k)), rel=1e-15)
    assert interval.median == pytest.approx(float(np.median(values)))
    assert min(values) <= interval.low <= interval.high <= max(values)


def test_median_interval_of_three_seeds_is_their_range_at_75_percent():
    interval = stats.median_interval([0.3, -0.4, 0.5])  # a t interval over these reaches about ±1.1
    assert (interval.low, interval.high, interval.coverage) == (-0.4, 0.5, 0.75)
    assert not interval.resolved()
    assert not stats.median_interval([0.1, 0.2, 0.3]).resolved()  # all three agree, but only at 75%
    assert stats.median_interval([0.1, 0.2, 0.3, 0.1, 0.2, 0.3]).resolved()  # six seeds reach 96.9%


def test_the_evaluate_and_report_stages_start_without_scipy_stats():
    """scipy.stats takes about a second to import, and those stages use only the bootstrap and the types."""
    import subprocess
    import sys

    imported = subprocess.run([sys.executable, "-c", "import sys, seecam.evaluate, seecam.report; "
                               "print(sorted(m for m in sys.modules if m.startswith('scipy.stats')))"],
                              capture_output=True, text=True, check=True).stdout
    assert imported.strip() == "[]"
