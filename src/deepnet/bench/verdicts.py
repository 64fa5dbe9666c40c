"""The verdict layer: when a measured ratio may be stated as "faster", "slower" or "same".

A comparison of two cases at one grid point rests on their per-round ratios (both timed
in the same round, so slow drifts of the machine cancel). Its verdict is

``faster`` / ``slower``  the confidence interval of the speedup lies beyond the band
                         (``> 1 + band`` or ``< 1 / (1 + band)``);
``same``                 the interval lies inside the band: no difference beyond it;
``undecided``            the interval reaches across an edge of the band, or there are
                         too few rounds for an interval at the asked confidence: the
                         report says "no clear difference" and why;
``unreliable``           the measurement cannot be trusted, whatever its interval:
                         a step faster than its own GEMM floor, a spread (IQR/median)
                         over ``max_spread``, other processes taking CPU in too many
                         rounds, rounds drifting enough to change the verdict
                         (:func:`holds_through_drift`), samples taken past the budget.

Only the first three are verdicts; the report counts how much of the grid has one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deepnet.bench.stats import (
    Interval,
    binomial_coverage,
    mann_kendall,
    median_interval,
    min_rounds,
    quantiles,
    theil_sen_slope,
)

__all__ = [
    "CLEAR",
    "VERDICTS",
    "Criteria",
    "Verdict",
    "classify",
    "drift_flag",
    "drift_size",
    "floor_flag",
    "holds_through_drift",
    "look_confidence",
    "look_index",
    "look_levels",
    "look_schedule",
    "paired_verdict",
    "spread_flag",
]

VERDICTS = ("faster", "slower", "same", "undecided", "unreliable")
CLEAR = frozenset({"faster", "slower", "same"})


@dataclass(frozen=True)
class Criteria:
    """The thresholds of the verdict layer (each a ``deepnet bench`` option).

    ``confidence``: of every interval; ``band``: the "no clear difference" band, ±5 %
    (a ratio within ``[1/1.05, 1.05]``); ``max_spread``: IQR/median of a case's times;
    ``max_interference``: cores other processes may take during a round (beyond those
    this process leaves free) before the round is set aside; ``floor_tolerance``: how far
    below its GEMM floor a step may measure (rounding) before it is flagged;
    ``drift_alpha``: level of the Mann-Kendall trend test.
    """

    confidence: float = 0.95
    band: float = 0.05
    max_spread: float = 0.25
    max_interference: float = 0.25
    floor_tolerance: float = 0.02
    drift_alpha: float = 0.01

    def as_dict(self) -> dict[str, float]:
        return {"confidence": self.confidence, "band": self.band,
                "max_spread": self.max_spread, "max_interference": self.max_interference,
                "floor_tolerance": self.floor_tolerance, "drift_alpha": self.drift_alpha}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Criteria:
        known = cls().as_dict()
        return cls(**{k: float(v) for k, v in (data or {}).items() if k in known})


@dataclass(frozen=True)
class Verdict:
    """A ratio (in the orientation it is shown: its median over ``rounds`` rounds, and its
    interval when enough rounds reach the confidence), and what it means for the case
    compared: ``label`` in :data:`VERDICTS`, ``why`` a sentence when it is not a clear
    verdict."""

    estimate: float
    rounds: int
    interval: Interval | None
    label: str
    why: str = ""
    log_sd: float | None = None  # robust spread of the log ratios: IQR / 1.349

    @property
    def clear(self) -> bool:
        return self.label in CLEAR

    def as_dict(self) -> dict[str, Any]:
        iv = self.interval
        return {"estimate": self.estimate, "lo": iv.lo if iv else None,
                "hi": iv.hi if iv else None, "confidence": iv.confidence if iv else None,
                "rounds": self.rounds, "verdict": self.label, "why": self.why,
                "log_sd": self.log_sd}


def look_schedule(first_look: int, max_rounds: int | None) -> tuple[int, ...]:
    """The usable-round counts at which the sweep looks at a point, fixed in advance:
    ``first_look`` (``--repeat``), then doubling, capped by and ending at ``max_rounds``
    (``6, 12, 24, 40`` by default)."""
    looks = [first_look]
    most = first_look if max_rounds is None else max(max_rounds, first_look)
    while looks[-1] < most:
        looks.append(min(2 * looks[-1], most))
    return tuple(looks)


def look_levels(criteria: Criteria, first_look: int, max_rounds: int | None
                ) -> tuple[float, ...]:
    """The confidence of each look of :func:`look_schedule`, the error split in advance.

    Look 0 (``first_look`` rounds) is judged at the criteria's confidence and spends what
    its interval leaves uncovered (``2/64`` of the 5 % at 6 rounds, the ``[min, max]`` of
    6 covering 96.875 %). The rest of ``α = 1 - confidence`` is split among the later looks
    with weights 1, 1, …, 1 and ½ for the last (the look at ``max_rounds``, where mostly
    hopeless points end). By default (6, 12, 24, 40; ``α`` = 5 %): 1.875 % is left, so
    0.75 % at 12 rounds (99.25 %: the interval drops the extreme round on each side,
    covering 99.37 %), 0.75 % at 24 (drops 5 on each side, 99.34 %) and 0.375 % at 40
    (99.625 %: drops 10 on each side). Equal thirds (0.625 %) would leave 12 rounds only
    their ``[min, max]`` (dropping one needs 0.635 %), so one disturbed round would keep
    the point open. Summed over the looks the error is at most ``α``.
    """
    looks = look_schedule(first_look, max_rounds)
    alpha = 1.0 - criteria.confidence
    spent = 0.0
    if first_look >= min_rounds(criteria.confidence):
        j = 1
        while j + 1 <= (first_look + 1) // 2 and \
                binomial_coverage(first_look, j + 1) >= criteria.confidence:
            j += 1
        spent = 1.0 - binomial_coverage(first_look, j)
    later = len(looks) - 1
    weights = [1.0] * later
    if later >= 2:
        weights[-1] = 0.5
    left = max(alpha - spent, 0.0)
    later_levels = [min(1.0 - 1e-12, 1.0 - left * w / sum(weights)) for w in weights]
    return (criteria.confidence, *later_levels)


def look_index(rounds: int, first_look: int, max_rounds: int | None) -> int:
    """The look a point with ``rounds`` usable rounds is judged at: the first scheduled
    count at or beyond it. A point cut (by time or ``max_rounds``) between two looks is
    judged at the level of the next one, which it never reaches, so no share is spent
    twice."""
    looks = look_schedule(first_look, max_rounds)
    for i, count in enumerate(looks):
        if rounds <= count:
            return i
    return len(looks) - 1


def look_confidence(criteria: Criteria, rounds: int, first_look: int | None,
                    max_rounds: int | None) -> float:
    """The confidence a verdict on a point with ``rounds`` usable rounds is judged at.

    The sweep does not look after every round: repeated looks at the same comparison, each
    at the nominal confidence, would call a ratio on the band's edge "faster" about twice
    as often as the interval says (5 % instead of 2.5 % in simulated sweeps). It looks
    only when a point's usable rounds reach a count of :func:`look_schedule` (6, 12, 24,
    40), and each look has its share of the error, fixed in advance
    (:func:`look_levels`): whatever the stopping rule, the chance that a verdict is wrong
    stays within ``1 - confidence``.

    Rounds set aside (interference, short samples) are not counted: the schedule is in
    usable rounds, so the sweep measures on until the usable count reaches the next
    scheduled one. Each look index is then taken at most once, on the first ``S[i]``
    usable rounds; a point left between two counts (cut by time, or ``max_rounds``
    measured with rounds set aside) is judged at the next look's level, a look it never
    took. Which rounds are set aside depends on the CPU accounting, not on the ratios.
    """
    if first_look is None or rounds <= first_look:
        return criteria.confidence
    levels = look_levels(criteria, first_look, max_rounds)
    return levels[look_index(rounds, first_look, max_rounds)]


def classify(speedup: Interval | None, criteria: Criteria, rounds: int,
             confidence: float | None = None) -> tuple[str, str]:
    """``(label, why)`` for a speedup interval (``> 1``: the case is faster)."""
    band = criteria.band
    if speedup is None:
        level = criteria.confidence if confidence is None else confidence
        need = min_rounds(level)
        text = f"{level:.0%}" if level == criteria.confidence else (
            f"{level:.4%} (the level of a point given more rounds)")
        return "undecided", (f"{rounds} usable round(s): a {text} "
                             f"interval needs at least {need}")
    up, down = 1.0 + band, 1.0 / (1.0 + band)
    if speedup.lo > up:
        return "faster", ""
    if speedup.hi < down:
        return "slower", ""
    if speedup.lo >= down and speedup.hi <= up:
        return "same", ""
    return "undecided", (f"no clear difference: the interval [{speedup.lo:.3g}, "
                         f"{speedup.hi:.3g}] reaches across the ±{band:.0%} band")


def spread_flag(times: Sequence[float], criteria: Criteria, what: str = "") -> str | None:
    """A flag when the IQR/median of ``times`` is over ``max_spread``."""
    if len(times) < 2:
        return None
    q1, med, q3 = quantiles(times)
    rel = (q3 - q1) / med
    if rel > criteria.max_spread:
        return (f"spread{' of ' + what if what else ''}: IQR/median {rel:.0%} > "
                f"{criteria.max_spread:.0%}")
    return None


def floor_flag(step_over_floor: Sequence[float], criteria: Criteria) -> str | None:
    """A flag when a step measures below its own GEMM floor (median per-round ratio)."""
    if not step_over_floor:
        return None
    med = quantiles(step_over_floor)[1]
    if med < 1.0 - criteria.floor_tolerance:
        return f"below its GEMM floor: ÷ floor {med:.2f} (a step cannot beat its matmuls)"
    return None


def drift_size(ratios: Sequence[float], criteria: Criteria) -> tuple[float, float] | None:
    """``(moved, p)`` when per-round ratios (in time order) trend: Mann-Kendall significant
    at ``drift_alpha`` and the Theil-Sen trend of their logs moving them by ``moved`` (a
    change of the log ratio over the rounds) of more than half the band; else ``None``.
    On logs, a ratio and its inverse (a speedup, a time ratio) drift by the same amount.
    A trend whose every round lies beyond the band on the same side is let pass here:
    each round alone says the same."""
    k = len(ratios)
    if k < 3:
        return None
    up = 1.0 + criteria.band
    if min(ratios) > up or max(ratios) < 1.0 / up:
        return None
    _, p = mann_kendall(ratios)
    if p >= criteria.drift_alpha:
        return None
    moved = abs(theil_sen_slope([math.log(x) for x in ratios])) * (k - 1)
    if moved <= math.log1p(criteria.band) / 2:
        return None
    return moved, p


def drift_flag(ratios: Sequence[float], criteria: Criteria) -> str | None:
    """A flag when per-round ratios trend (:func:`drift_size`)."""
    found = drift_size(ratios, criteria)
    if found is None:
        return None
    moved, p = found
    return (f"drift: the ratio moved {math.expm1(moved):.0%} over {len(ratios)} rounds "
            f"(Mann-Kendall p = {p:.2g})")


def holds_through_drift(speedup: Interval | None, moved: float, criteria: Criteria,
                        rounds: int) -> bool:
    """Whether a clear verdict holds however the ratio moved during the rounds: the trend
    line (on logs, :func:`drift_size`) runs from about ``moved / 2`` below the median to
    ``moved / 2`` above it, so the interval widened by a factor ``exp(moved / 2)`` on each
    side must still give the same verdict. A drift that cannot change the verdict (torch
    1.10× at the start, 1.29× at the end: faster throughout) is let pass; one that could
    (1.0× to 1.6×) makes the comparison unreliable. The same in either orientation."""
    if speedup is None:
        return False
    label, _ = classify(speedup, criteria, rounds)
    if label not in CLEAR:
        return False
    half = math.exp(moved / 2.0)
    wide = Interval(speedup.estimate, speedup.lo / half, speedup.hi * half,
                    speedup.confidence, speedup.count)
    return classify(wide, criteria, rounds)[0] == label


def paired_verdict(num: Mapping[int, float], den: Mapping[int, float], criteria: Criteria,
                   flags: Sequence[str] = (), *, as_time_ratio: bool = False,
                   confidence: float | None = None) -> Verdict | None:
    """The verdict on ``num[r] / den[r]`` over the rounds both have (in round order).

    By default the ratio is a speedup of the ``den`` case (``numpy / torch``: torch's
    speedup over NumPy). With ``as_time_ratio`` it is shown as a time ratio of the ``num``
    case (``deepnet / PyTorch``: under 1 when deepnet is faster) and judged as the speedup
    ``den / num``. ``flags`` (untrustworthy measurements of either case) make it
    ``unreliable``. ``None`` when the two share no round. ``confidence``: the level of the
    interval (default the criteria's; :func:`look_confidence` after repeated looks).
    """
    rounds = sorted(set(num) & set(den))
    if not rounds:
        return None
    ratios = [num[r] / den[r] for r in rounds]
    level = criteria.confidence if confidence is None else confidence
    interval = median_interval(ratios, level)
    speedup = None
    if interval is not None:
        speedup = interval.inverted() if as_time_ratio else interval
    reasons = list(flags)
    drift = drift_size(ratios, criteria)
    if drift is not None and not holds_through_drift(speedup, drift[0], criteria,
                                                     len(rounds)):
        reasons.append(f"drift: the ratio moved {math.expm1(drift[0]):.0%} over "
                       f"{len(rounds)} rounds (Mann-Kendall p = {drift[1]:.2g}), enough to "
                       "change the verdict")
    estimate = quantiles(ratios)[1]
    logs = quantiles([math.log(x) for x in ratios])
    sd = (logs[2] - logs[0]) / 1.349
    if reasons:
        return Verdict(estimate, len(rounds), interval, "unreliable", "; ".join(reasons), sd)
    label, why = classify(speedup, criteria, len(rounds), level)
    return Verdict(estimate, len(rounds), interval, label, why, sd)
