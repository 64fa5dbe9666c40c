"""Where more rounds are worth it: a point's usable rounds, its next scheduled look, and
about how many rounds its open verdicts need (the sweep's pass 2 ranks points by it).

The looks themselves, and the confidence of each, are fixed in advance
(:func:`~deepnet.bench.verdicts.look_schedule`); nothing here changes which verdict a
point gets from its rounds, only which points the sweep spends its time on.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from typing import Any

from deepnet.bench.grid import Config
from deepnet.bench.stats import min_rounds
from deepnet.bench.summary import COMPARISONS, summarize, verdict_level
from deepnet.bench.verdicts import look_schedule

__all__ = ["next_look", "point_samples", "rounds_needed", "rounds_to_next_look"]

Job = tuple[str, int, int]  # (dtype, n, m)


def point_samples(results: Mapping[str, Any], job: Job) -> list[dict]:
    """The samples of one grid point ``(dtype, n, m)``."""
    return [s for s in results["samples"] if (s["dtype"], s["n"], s["m"]) == job]


def next_look(usable: int, config: Config) -> int | None:
    """The usable-round count of the next scheduled look after ``usable`` rounds, ``None``
    when ``usable`` is one of them."""
    looks = look_schedule(config.repeat, config.max_rounds)
    if usable in looks:
        return None
    return next((c for c in looks if c > usable), looks[-1])


def rounds_to_next_look(usable: int, rounds: int, config: Config) -> int:
    """Rounds to measure for ``usable`` usable rounds (of ``rounds`` measured) to reach
    the next scheduled look after them, at the rate rounds have been usable so far;
    at least 1, at most what ``max_rounds`` leaves."""
    nxt = next((c for c in look_schedule(config.repeat, config.max_rounds) if c > usable),
               config.max_rounds)
    rate = max(usable / max(rounds, 1), 0.25)
    return max(1, min(config.max_rounds - rounds, math.ceil((nxt - usable) / rate)))


def rounds_needed(results: Mapping[str, Any], config: Config, job: Job, k: int
                  ) -> tuple[float | None, float]:
    """``(need, long shot)`` for a point measured ``k`` rounds. ``need``: about how many
    rounds in all it needs for its open verdicts to settle, ``None`` when none is open
    that more rounds can settle within ``max_rounds``; ``long shot``: the rounds the
    likeliest of the others would need (``inf``: none).

    An undecided ratio at distance ``d`` from the band's edge (on logs), whose log
    ratios spread with a robust standard deviation ``s``, settles once its interval's
    half-width, about ``z · 1.2533 · s / √k`` for the median of ``k`` rounds, is
    under ``d`` (``z``: the normal quantile of the confidence of the next scheduled
    look, :func:`~deepnet.bench.verdicts.look_confidence`); one that would need more
    than ``max_rounds`` gets one more look (the second scheduled one, ``2 · repeat``
    usable rounds), then is a long shot: the sweep gives it its later looks only with
    time no likelier point needs.
    A point left with too few rounds after setting some aside (interference, short
    samples) needs a fresh set; one too spread, twice the rounds.
    """
    mine = point_samples(results, job)
    if not mine:
        return None, math.inf
    cfg, crit = config, config.criteria
    edge = math.log1p(crit.band)
    view = {**results, "samples": mine, "points": []}
    rows = summarize(view, crit)
    usable = max((r["rounds_clean"] for r in rows), default=0)
    level = verdict_level(results, crit, max(usable + 1, cfg.repeat + 1))
    z = statistics.NormalDist().inv_cdf(1.0 - (1.0 - level) / 2.0)
    second = look_schedule(cfg.repeat, cfg.max_rounds)[1:2] or (cfg.max_rounds,)
    need, shot = 0.0, math.inf
    for row in rows:
        if any(f.startswith(("interference", "short samples")) for f in row["flags"]):
            # the clean rounds still missing, at the rate clean rounds came so far
            rate = max(row["rounds_clean"] / max(k, 1), 0.25)
            need = max(need, k + (min_rounds(crit.confidence) - row["rounds_clean"]) / rate)
        elif any(f.startswith("spread") for f in row["flags"]):
            need = max(need, 2.0 * k)
        for key in COMPARISONS:
            v = row.get(key)
            if v is None or v["verdict"] != "undecided":
                continue
            if v["lo"] is None:
                need = max(need, float(min_rounds(crit.confidence)
                                       + row.get("rounds_set_aside", 0)))
                continue
            d = abs(abs(math.log(v["estimate"])) - edge)
            sd = v.get("log_sd") or 0.0
            k_needed = max(k + 1.0, 1.2 * (z * 1.2533 * sd / max(d, 1e-12)) ** 2)
            if k_needed <= cfg.max_rounds:  # the hopeless ones must not hold up the rest
                need = max(need, k_needed)
            elif usable < second[0]:  # but the median of a few rounds is noisy itself:
                need = max(need, float(k + second[0] - usable))  # one more look
            else:  # a long shot: its later looks only with time no likelier point needs
                shot = min(shot, k_needed)
    return need or None, shot
