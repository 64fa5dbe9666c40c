"""``deepnet.bench.stats``: the intervals reach their nominal coverage on synthetic samples
(checked against the exact binomial coverage), and the exact null distributions match
brute-force enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from deepnet.bench import stats

TRIALS = 2000


def test_quantiles():
    assert stats.quantiles([3.0]) == (3.0, 3.0, 3.0)
    assert stats.quantiles([1.0, 3.0, 4.0]) == (2.0, 3.0, 3.5)
    with pytest.raises(ValueError):
        stats.quantiles([])


def test_binomial_coverage_and_min_rounds():
    assert stats.binomial_coverage(6, 1) == pytest.approx(1 - 2 / 64)
    assert stats.binomial_coverage(9, 2) == pytest.approx(1 - 2 * 10 / 512)
    assert stats.min_rounds(0.95) == 6
    assert stats.min_rounds(0.90) == 5
    assert stats.min_rounds(0.99) == 8


def test_median_interval_picks_the_narrowest_order_statistics():
    assert stats.median_interval([1.0] * 5, 0.95) is None  # 5 values reach 93.75 % at most
    iv = stats.median_interval(list(range(1, 10)), 0.95)
    assert (iv.estimate, iv.lo, iv.hi, iv.count) == (5, 2, 8, 9)
    assert iv.confidence == pytest.approx(1 - 2 * 10 / 512)
    iv = stats.median_interval(list(range(1, 31)), 0.95)
    assert (iv.lo, iv.hi) == (10, 21)  # j = 10 for k = 30: 1 - 2 P(B <= 9) = 0.957
    assert iv.confidence >= 0.95 > stats.binomial_coverage(30, 11)
    inv = iv.inverted()
    assert (inv.lo, inv.hi) == (1 / 21, 1 / 10)
    with pytest.raises(ValueError):
        stats.median_interval([1.0, 2.0], 1.5)


@pytest.mark.parametrize("k", [6, 9, 15, 30])
@pytest.mark.parametrize("noise", ["lognormal", "heavy"])
def test_median_interval_covers_the_true_ratio_at_its_nominal_rate(k, noise):
    """Per-round ratios ``true · e^ε`` (ε symmetric: normal, or Student t with 2 degrees
    of freedom for outliers): the interval holds the true ratio as often as its exact
    coverage says, never less often than the nominal 95 % (within sampling error)."""
    rng = np.random.default_rng(1000 + k)
    true = 1.37
    hits = 0
    confidence = None
    for _ in range(TRIALS):
        eps = (rng.normal(0, 0.1, k) if noise == "lognormal"
               else 0.05 * rng.standard_t(2, k))
        iv = stats.median_interval(list(true * np.exp(eps)), 0.95)
        confidence = iv.confidence
        hits += iv.lo <= true <= iv.hi
    rate = hits / TRIALS
    se = math.sqrt(confidence * (1 - confidence) / TRIALS)
    assert abs(rate - confidence) <= 4 * se, (rate, confidence)
    assert rate >= 0.95 - 3 * se, rate


@pytest.mark.parametrize("n1, n2", [(6, 6), (8, 12), (20, 20)])
def test_shift_interval_covers_the_true_ratio(n1, n2):
    """Two independent runs, B's timings 1.2× A's with the same log-normal noise."""
    rng = np.random.default_rng(7 + n1 + n2)
    hits, reached = 0, None
    for _ in range(TRIALS):
        a = np.exp(rng.normal(0, 0.05, n1))
        b = 1.2 * np.exp(rng.normal(0, 0.05, n2))
        iv = stats.shift_interval(list(a), list(b), 0.95)
        reached = iv.confidence
        hits += iv.lo <= 1.2 <= iv.hi
    rate = hits / TRIALS
    se = math.sqrt(reached * (1 - reached) / TRIALS)
    assert reached >= 0.95
    assert abs(rate - reached) <= 4 * se, (rate, reached)


def test_shift_interval_of_a_scaled_copy_is_centred_on_the_scale():
    a = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02]
    iv = stats.shift_interval(a, [1.2 * x for x in a])
    assert iv.estimate == pytest.approx(1.2)
    assert iv.lo < 1.2 < iv.hi
    assert stats.shift_interval(a[:3], a[:3], 0.95) is None  # 3 and 3 reach 90 % at most
    assert stats.shift_interval([], a) is None
    with pytest.raises(ValueError):
        stats.shift_interval([0.0, 1.0], a)


@pytest.mark.parametrize("n1, n2", [(3, 4), (4, 4), (2, 5), (5, 3)])
def test_mann_whitney_null_distribution_matches_enumeration(n1, n2):
    counts = np.zeros(n1 * n2 + 1)
    for comb in itertools.combinations(range(n1 + n2), n1):
        chosen = set(comb)
        u = sum(1 for i in comb for j in range(n1 + n2) if j not in chosen and i > j)
        counts[u] += 1
    expected = np.cumsum(counts) / counts.sum()
    np.testing.assert_allclose(stats._mann_whitney_cdf(n1, n2), expected, atol=1e-12)


@pytest.mark.parametrize("k", [3, 4, 5, 6])
def test_mann_kendall_p_values_match_enumeration(k):
    perms = list(itertools.permutations(range(k)))
    s_values = np.array([stats.mann_kendall(list(p))[0] for p in perms])
    for p in perms[:: max(1, len(perms) // 20)]:
        s, pval = stats.mann_kendall(list(p))
        assert pval == pytest.approx(np.mean(np.abs(s_values) >= abs(s)))
    assert stats.mann_kendall(list(range(k))) == (k * (k - 1) // 2,
                                                   pytest.approx(2 / math.factorial(k)))
    assert stats.mann_kendall([1.0, 2.0]) == (0, 1.0)


def test_theil_sen_slope():
    assert stats.theil_sen_slope([1.0, 2.0, 3.0, 4.0, 100.0]) == 1.0  # robust to the outlier
    assert stats.theil_sen_slope([2.0, 4.0, 6.0, 8.0, 10.0]) == 2.0
    assert stats.theil_sen_slope([5.0]) == 0.0


def test_mann_kendall_takes_numpy_scalars():
    assert stats.mann_kendall(list(np.arange(5.0))) == stats.mann_kendall([0., 1., 2., 3., 4.])
