"""What a sweep measures: the :class:`Config` (grid, rounds, budget, criteria) and the
cases of one grid point, with the backends over their width cap or out of memory recorded
as skipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deepnet.bench.cases import (
    DEFAULT_MAX_WIDTH,
    HIDDEN_LAYERS,
    LEARNING_RATE,
    REFERENCE_PREFIX,
    Case,
    deepnet_cases,
    parse_target,
    reference_case,
)
from deepnet.bench.verdicts import Criteria

__all__ = ["Config", "Key", "build_cases", "skip", "skip_key", "width_cap"]

Key = tuple[str, str]  # (target, case kind)


@dataclass
class Config:
    """What to measure and how long (the command-line options, in one place)."""

    backends: list[str]
    widths: list[int]
    batches: list[int]
    dtypes: list[str]
    repeat: int = 6
    max_rounds: int = 40
    cases: tuple[str, ...] = ("step", "floor")
    reference: bool = True
    pause: float = 0.2
    min_time: float = 0.05
    max_width: dict[str, int] | None = None
    max_sample_seconds: float | None = None
    time_budget: float | None = None
    report_reserve: float = 0.0
    extra_points: tuple[tuple[int, int], ...] = ()
    seed: int = 0
    criteria: Criteria = field(default_factory=Criteria)

    def points(self) -> list[tuple[int, int]]:
        """The grid, cheapest first, then the extra points (also cheapest first)."""
        grid = sorted({(n, m) for n in self.widths for m in self.batches},
                      key=lambda p: (p[0] * p[0] * p[1], p))
        extra = sorted(set(self.extra_points) - set(grid), key=lambda p: (p[0] * p[0] * p[1], p))
        return grid + extra

    def as_dict(self) -> dict[str, Any]:
        return {"backends": self.backends, "widths": self.widths, "batches": self.batches,
                "dtypes": self.dtypes, "repeat": self.repeat, "max_rounds": self.max_rounds,
                "cases": list(self.cases), "reference": self.reference,
                "pause_s": self.pause, "pause_policy": "wait for idle pools at a library "
                "change, at most pause_s", "min_time_s": self.min_time,
                "max_width": self.max_width or {}, "max_sample_seconds": self.max_sample_seconds,
                "time_budget_s": self.time_budget, "report_reserve_s": self.report_reserve,
                "extra_points": [list(p) for p in self.extra_points], "seed": self.seed,
                "criteria": self.criteria.as_dict(), "hidden_layers": HIDDEN_LAYERS,
                "learning_rate": LEARNING_RATE,
                "flops_per_step": "6 * sum_l n[l] * n[l-1] * m"}


def skip(results: dict, target: str, n: int, m: int, dtype: str, why: str,
          case: str | None = None) -> None:
    """Record in ``results["skipped"]`` that ``target`` (one ``case`` of it, or all) was not
    measured at ``(n, m)``, and why: once (with the first reason), however often the
    sweep revisits the point."""
    entry = {"target": target, "case": case, "n": n, "m": m, "dtype": dtype, "reason": why}
    if skip_key(entry) not in {skip_key(s) for s in results["skipped"]}:
        results["skipped"].append(entry)


def skip_key(entry: dict) -> tuple:
    """What makes two skips the same: the target, case and point, whatever the reason."""
    return (entry.get("target"), entry.get("case"), entry.get("n"), entry.get("m"),
            entry.get("dtype"))


def build_cases(config: Config, results: dict, n: int, m: int, dtype: str) -> dict[Key, Case]:
    """Every case of one point: deepnet's on each backend, then each native reference.

    A backend over its ``--max-width`` cap, or one that fails to build (out of memory),
    is recorded in ``results["skipped"]`` and left out.
    """
    cases: dict[Key, Case] = {}
    refs: list[str] = []
    for t in config.backends:
        cap = width_cap(config, t)
        if cap is not None and n > cap:
            skip(results, t, n, m, dtype, f"n > {cap} (--max-width {t}={cap})")
            continue
        try:
            for kind, case in deepnet_cases(t, n, m, dtype, config.seed, config.cases).items():
                cases[(t, kind)] = case
        except (MemoryError, RuntimeError) as exc:  # torch's CUDA OOM is a RuntimeError
            skip(results, t, n, m, dtype, f"{type(exc).__name__}: {exc}")
            continue
        ref = results["targets"][t]["reference"]
        if ref and ref not in refs:
            refs.append(ref)
    for ref in refs:
        try:
            cases[(ref, "step")] = reference_case(ref.removeprefix(REFERENCE_PREFIX), n, m,
                                                  dtype, config.seed)
        except (ImportError, MemoryError, RuntimeError) as exc:
            skip(results, ref, n, m, dtype, f"{type(exc).__name__}: {exc}")
    return cases




def width_cap(config: Config, target: str) -> int | None:
    """The widest ``n`` measured on ``target``: ``--max-width``, else the default caps."""
    caps = {**DEFAULT_MAX_WIDTH, **(config.max_width or {})}
    return caps.get(target, caps.get(parse_target(target)[0]))
