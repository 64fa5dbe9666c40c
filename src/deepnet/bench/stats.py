"""Distribution-free statistics for timings: quantiles, confidence intervals, trend tests.

Timings are skewed and carry outliers (a page fault, a context switch, a neighbour's
burst), so nothing here assumes a normal distribution:

- :func:`median_interval`: the exact order-statistic interval for a median. For ``k``
  independent values from any continuous distribution, ``[x_(j), x_(k-j+1)]`` covers the
  median with probability ``1 - 2 P(B <= j - 1)``, ``B ~ Binomial(k, 1/2)``; the widest
  ``j`` reaching the asked confidence is taken, and the confidence actually reached is
  returned with it. Applied to per-round ratios it is the interval of every ratio the
  sweep reports.
- :func:`shift_interval`: the Hodges-Lehmann estimate of the ratio between two
  independent sets of timings, with its exact Mann-Whitney (Moses) interval, on logs:
  ``deepnet bench compare``, where two runs share no rounds.
- :func:`mann_kendall`: the exact Mann-Kendall test for a monotone trend over rounds
  (drift), and :func:`theil_sen_slope` for its size.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "Interval",
    "binomial_coverage",
    "mann_kendall",
    "median_interval",
    "min_rounds",
    "quantiles",
    "shift_interval",
    "theil_sen_slope",
]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval ``[lo, hi]``.

    ``confidence``: the coverage the interval reaches (at least the one asked for);
    ``count``: how many values (rounds) it rests on.
    """

    estimate: float
    lo: float
    hi: float
    confidence: float
    count: int

    def inverted(self) -> Interval:
        """The interval of ``1 / x`` (a speedup from a time ratio)."""
        return Interval(1.0 / self.estimate, 1.0 / self.hi, 1.0 / self.lo, self.confidence,
                        self.count)


def quantiles(values: Sequence[float]) -> tuple[float, float, float]:
    """``(q1, median, q3)`` (inclusive method); with one value all three are that value."""
    values = sorted(values)
    if not values:
        raise ValueError("quantiles of no values")
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def binomial_coverage(k: int, j: int) -> float:
    """Coverage of ``[x_(j), x_(k-j+1)]`` for the median of ``k`` values (``1 <= j``)."""
    tail = sum(math.comb(k, i) for i in range(j)) / 2.0**k
    return 1.0 - 2.0 * tail


def min_rounds(confidence: float) -> int:
    """The fewest values whose ``[min, max]`` covers the median at ``confidence``."""
    k = 1
    while binomial_coverage(k, 1) < confidence:
        k += 1
    return k


def median_interval(values: Sequence[float], confidence: float = 0.95) -> Interval | None:
    """The median of ``values`` with its exact order-statistic interval.

    ``None`` when there are too few values to reach ``confidence`` at all
    (:func:`min_rounds`: 6 for 95 %).

    >>> iv = median_interval([1.0, 1.1, 0.9, 1.05, 0.95, 1.02], 0.95)
    >>> (iv.lo, iv.hi, round(iv.confidence, 4))
    (0.9, 1.1, 0.9688)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    xs = sorted(values)
    k = len(xs)
    if k == 0 or binomial_coverage(k, 1) < confidence:
        return None
    j = 1
    while j + 1 <= (k + 1) // 2 and binomial_coverage(k, j + 1) >= confidence:
        j += 1
    return Interval(statistics.median(xs), xs[j - 1], xs[k - j], binomial_coverage(k, j), k)


@lru_cache(maxsize=256)
def _mann_whitney_cdf(n1: int, n2: int) -> np.ndarray:
    """``P(U <= u)`` for ``u = 0 .. n1·n2`` under the null (no ties): the Gaussian
    binomial coefficient ``[n1+n2 choose n1]_q``, normalized."""
    size = n1 * n2 + 1
    p = np.zeros(size)
    p[0] = 1.0
    for i in range(1, n1 + 1):
        # multiply by (1 - q^(n2+i)), then divide by (1 - q^i)
        shifted = np.zeros(size)
        shifted[n2 + i:] = p[:size - n2 - i]
        p = p - shifted
        for r in range(i):
            p[r::i] = np.cumsum(p[r::i])
        p /= p.sum()
    return np.cumsum(p)


def shift_interval(a: Sequence[float], b: Sequence[float],
                   confidence: float = 0.95) -> Interval | None:
    """The ratio ``b / a`` of two independent sets of positive timings, with its interval.

    Hodges-Lehmann on logs: the estimate is the median of the ``len(a)·len(b)`` pairwise
    ratios ``b_i / a_j``; the interval is cut from their ordered values at the exact
    Mann-Whitney critical value (Moses' method), valid when ``b`` is ``a`` scaled by a
    constant factor plus independent noise of the same shape. ``None`` when the samples
    are too small to reach ``confidence`` (3 and 3 reach 90 %, 4 and 4 reach 97 %).
    """
    if not a or not b:
        return None
    if min(a) <= 0 or min(b) <= 0:
        raise ValueError("timings must be positive")
    n1, n2 = len(a), len(b)
    cdf = _mann_whitney_cdf(min(n1, n2), max(n1, n2))
    alpha = 1.0 - confidence
    # the largest k with P(U <= k - 1) <= alpha / 2; k = 0 means no interval reaches it
    k = int(np.searchsorted(cdf, alpha / 2.0, side="right"))
    if k < 1:
        return None
    d = np.sort(np.subtract.outer(np.log(np.asarray(b, float)),
                                  np.log(np.asarray(a, float))).ravel())
    reached = 1.0 - 2.0 * float(cdf[k - 1])
    return Interval(float(np.exp(np.median(d))), float(np.exp(d[k - 1])),
                    float(np.exp(d[d.size - k])), reached, min(n1, n2))


@lru_cache(maxsize=256)
def _inversions_cdf(k: int) -> np.ndarray:
    """``P(inversions <= i)`` of a uniformly random permutation of ``k`` items."""
    p = np.ones(1)
    for i in range(1, k + 1):
        p = np.convolve(p, np.ones(i))
        p /= p.sum()
    return np.cumsum(p)


def mann_kendall(values: Sequence[float]) -> tuple[int, float]:
    """``(S, p)``: Kendall's ``S`` of ``values`` against their order, and the exact
    two-sided p-value of no monotone trend (ties count as neither direction)."""
    values = [float(v) for v in values]  # NumPy scalars: bool minus bool is an error
    k = len(values)
    if k < 3:
        return 0, 1.0
    s = 0
    for i in range(k):
        for j in range(i + 1, k):
            s += (values[j] > values[i]) - (values[j] < values[i])
    # S = pairs - 2·inversions for a permutation; |S| >= |s| <=> inversions <= (pairs-|s|)/2
    pairs = k * (k - 1) // 2
    cdf = _inversions_cdf(k)
    low = math.floor((pairs - abs(s)) / 2)
    return s, min(1.0, 2.0 * float(cdf[low]))


def theil_sen_slope(values: Sequence[float]) -> float:
    """The median of the pairwise slopes ``(x_j - x_i) / (j - i)``: the trend per round."""
    k = len(values)
    slopes = [(values[j] - values[i]) / (j - i) for i in range(k) for j in range(i + 1, k)]
    return statistics.median(slopes) if slopes else 0.0
