"""From raw samples to rows: medians, per-round ratios with intervals, flags and verdicts.

Pure functions of a results dict, so a saved run can be re-judged under other criteria
(``--render``, ``--advise``, ``compare``) without measuring again.

At each grid point, rounds in which other processes competed for the cores (took more
than ``criteria.max_interference`` of one, and more than this process left free of the
usable cores) are set aside (the ratios of the other rounds stand),
as are rounds with a sample shorter than half of ``--min-time`` (a call count calibrated
while the machine was slower: such samples time cold caches and waking pools, not the
steady state) and rounds measured after the time budget's deadline (none, when the sweep
honours it). A point with too few usable rounds left is flagged and says why.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from deepnet.bench.cases import BASELINE, is_gpu, layer_dims, pretty, step_flops
from deepnet.bench.stats import median_interval, min_rounds, quantiles
from deepnet.bench.verdicts import (
    CLEAR,
    Criteria,
    Verdict,
    floor_flag,
    look_confidence,
    paired_verdict,
    spread_flag,
)

__all__ = ["COMPARISONS", "criteria_of", "grid_share", "point_table", "summarize",
           "usable_rounds", "verdict_level"]

# row key -> what the ratio is, for reports
COMPARISONS = {
    "vs_numpy": "speedup vs NumPy",
    "vs_reference": "÷ PyTorch",
    "vs_cpu": "speedup vs the fastest CPU backend",
}
Point = tuple[str, int, int]  # (dtype, n, m)


def criteria_of(results: Mapping[str, Any], override: Criteria | None = None) -> Criteria:
    """The criteria a run was judged by (its config's), unless ``override`` is given."""
    if override is not None:
        return override
    return Criteria.from_dict((results.get("config") or {}).get("criteria"))


def verdict_level(results: Mapping[str, Any], criteria: Criteria, rounds: int) -> float:
    """The confidence of the verdicts at a point with ``rounds`` usable rounds: the
    criteria's up to ``repeat`` rounds, beyond them the level of the next look the sweep
    scheduled in advance (``repeat``, doubling, up to ``max_rounds``:
    :func:`~deepnet.bench.verdicts.look_confidence`)."""
    cfg = results.get("config") or {}
    repeat, most = cfg.get("repeat"), cfg.get("max_rounds")
    return look_confidence(criteria, rounds, None if repeat is None else int(repeat),
                           None if most is None else int(most))


def usable_rounds(results: Mapping[str, Any], samples: Sequence[dict],
                  criteria: Criteria) -> int:
    """How many of one point's rounds (``samples``) are usable, none set aside: the count
    the sweep's looks are scheduled in."""
    budget = results.get("budget") or {}
    cores = (results.get("machine") or {}).get("cores_usable")
    return _point_rounds(samples, criteria, budget.get("deadline_s"), None, cores)[2][
        "rounds_clean"]


def _round_cores(samples: Sequence[dict]) -> dict[int, tuple[float | None, float | None]]:
    """Per round: ``(others, own)``, the cores other processes and this one kept busy on
    average while its samples ran (``None`` where not measured)."""
    wall: dict[int, float] = defaultdict(float)
    others: dict[int, float | None] = defaultdict(float)
    own: dict[int, float | None] = defaultdict(float)
    for s in samples:
        r, inner = s["round"], s.get("inner", 1)
        wall[r] += s["seconds"] * inner
        for total, key in ((others, "others_s"), (own, "cpu_s")):
            value = s.get(key)
            current = total[r]
            total[r] = None if value is None or current is None else current + value * inner
    return {r: tuple(None if t[r] is None or wall[r] <= 0 else t[r] / wall[r]  # type: ignore
                     for t in (others, own)) for r in wall}


def _interfered(others: float | None, own: float | None, cores: int | None,
                criteria: Criteria) -> bool:
    """Whether other processes competed for the cores in a round: they took more than
    ``max_interference`` cores, and (where the core count and this process's use are
    known) more than the cores this process left free, less ``max_interference``."""
    if others is None or others <= criteria.max_interference:
        return False
    if cores is None or own is None:
        return True
    return others + own > cores - criteria.max_interference


def _point_rounds(samples: Sequence[dict], criteria: Criteria, deadline: float | None,
                  loadavg: Sequence[float] | None, cores: int | None
                  ) -> tuple[set[int], list[str], dict[str, Any]]:
    """``(usable rounds, flags of the point, facts)`` for one grid point."""
    load = _round_cores(samples)
    late = {s["round"] for s in samples
            if deadline is not None and s.get("t") is not None and s["t"] > deadline}
    busy = {r for r, (others, own) in load.items()
            if _interfered(others, own, cores, criteria)}
    short = {s["round"] for s in samples if s.get("short")}
    usable = set(load) - busy - late - short
    clean = len(usable)
    need = min_rounds(criteria.confidence)
    flags = []
    if busy and len(usable) < need:
        flags.append(f"interference: other processes competed for the cores (took more "
                     f"than {criteria.max_interference:g} of one, and more than this process "
                     f"left free) in {len(busy)} of {len(load)} rounds")
        usable |= busy - short  # shown, flagged: too few clean rounds to set them aside
    if short and len(usable) < need:
        flags.append(f"short samples: {len(short)} of {len(load)} rounds had samples under "
                     "half of --min-time (the calls were calibrated while the machine was "
                     "slower)")
        usable |= short
    if late:
        flags.append(f"budget overrun: {len(late)} round(s) measured past the deadline")
    measured = [c for c, _ in load.values() if c is not None]
    if not measured and loadavg and cores and loadavg[0] > cores + 0.5:
        flags.append(f"interference: load average {loadavg[0]:.2f} on {cores} cores "
                     "(CPU accounting unavailable here)")
    facts = {"rounds_total": len(load), "rounds_set_aside": len(set(load) - usable),
             "rounds_clean": clean,
             "others_cores": statistics.median(measured) if measured else None}
    return usable, flags, facts


def _ratio_dict(values: Sequence[float], level: float) -> dict[str, Any] | None:
    if not values:
        return None
    iv = median_interval(values, level)
    med = quantiles(values)[1]
    return {"estimate": med, "lo": iv.lo if iv else None, "hi": iv.hi if iv else None,
            "confidence": iv.confidence if iv else None, "rounds": len(values),
            "verdict": None, "why": ""}


def _prefixed(row: Mapping[str, Any] | None) -> list[str]:
    if row is None:
        return []
    return [f"{pretty(row['target'])}: {f}" for f in row["flags"]]


def _verdict(v: Verdict | None) -> dict[str, Any] | None:
    return None if v is None else v.as_dict()


def summarize(results: Mapping[str, Any], criteria: Criteria | None = None
              ) -> list[dict[str, Any]]:
    """One row per (dtype, target, n, m) with step timings, in report order.

    Keys: ``dtype, target, role, gpu, n, m, flops, rounds, rounds_total,
    rounds_set_aside, median_s, q1_s, q3_s, iqr_rel, gflops, floor_median_s,
    floor_gflops, cpu_per_wall, others_cores, flags, forward_median_s,
    backward_median_s`` and the ratios ``vs_floor`` (step ÷ floor), ``vs_reference``
    (step ÷ native PyTorch), ``vs_numpy`` (NumPy ÷ step: a speedup), ``vs_cpu`` (fastest
    CPU deepnet step ÷ step), each ``None`` or a dict ``estimate, lo, hi, confidence,
    rounds, verdict, why``: medians of per-round ratios with their order-statistic
    interval (``lo``/``hi`` ``None`` when too few rounds reach the confidence).
    """
    crit = criteria_of(results, criteria)
    points_meta = {(p["dtype"], p["n"], p["m"]): p for p in results.get("points") or []}
    by_point: dict[Point, list[dict]] = defaultdict(list)
    for s in results.get("samples") or []:
        by_point[(s["dtype"], s["n"], s["m"])].append(s)
    rows: list[dict[str, Any]] = []
    for point in sorted(by_point):
        point_rows, _ = _analyze(results, point, by_point[point], crit, points_meta.get(point))
        rows += point_rows.values()
    return rows


def point_table(results: Mapping[str, Any], dtype: str, n: int, m: int,
                criteria: Criteria | None = None
                ) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], dict[int, float]]]:
    """One point's rows by target, and its usable per-round times by ``(target, case)``
    (for comparisons the rows do not hold, e.g. torch against CuPy)."""
    crit = criteria_of(results, criteria)
    samples = [s for s in results.get("samples") or [] if (s["dtype"], s["n"], s["m"])
               == (dtype, n, m)]
    meta = {(p["dtype"], p["n"], p["m"]): p for p in results.get("points") or []}
    return _analyze(results, (dtype, n, m), samples, crit, meta.get((dtype, n, m)))


def _analyze(results: Mapping[str, Any], point: Point, samples: Sequence[dict],
             crit: Criteria, meta: Mapping[str, Any] | None
             ) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], dict[int, float]]]:
    dtype, n, m = point
    targets = results.get("targets") or {}
    order = {t: i for i, t in enumerate(targets)}
    budget = results.get("budget") or {}
    machine = results.get("machine") or {}
    usable, point_flags, facts = _point_rounds(
        samples, crit, budget.get("deadline_s"), (meta or {}).get("loadavg_end"),
        machine.get("cores_usable"))
    table: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    cpu: dict[str, dict[int, float]] = defaultdict(dict)
    for s in samples:
        if s["round"] in usable:
            table[(s["target"], s["case"])][s["round"]] = s["seconds"]
            if s["case"] == "step" and s.get("cpu_s") is not None:
                cpu[s["target"]][s["round"]] = s["cpu_s"] / s["seconds"]
    point_rows = {}
    # the sweep's looks are scheduled in usable rounds: rounds set aside (interference)
    # do not make a later look
    level = verdict_level(results, crit, len(usable))
    for target in sorted({t for t, c in table if c == "step"},
                         key=lambda t: (order.get(t, len(order)), t)):
        point_rows[target] = _row(target, dtype, n, m, table, cpu, targets, crit,
                                  point_flags, facts, level)
    _compare(point_rows, table, crit, level)
    return point_rows, dict(table)


def _row(target: str, dtype: str, n: int, m: int, table: Mapping, cpu: Mapping,
         targets: Mapping, crit: Criteria, point_flags: list[str],
         facts: Mapping[str, Any], level: float) -> dict[str, Any]:
    info = targets.get(target, {"role": "deepnet", "gpu": is_gpu(target), "reference": None})
    steps = table[(target, "step")]
    q1, med, q3 = quantiles(list(steps.values()))
    flops = step_flops(layer_dims(n), m)
    floor = table.get((target, "floor"))
    flags = list(point_flags)
    spread = spread_flag(list(steps.values()), crit, "the step times")
    if spread:
        flags.append(spread)
    row: dict[str, Any] = {
        "dtype": dtype, "target": target, "role": info["role"], "gpu": info["gpu"],
        "n": n, "m": m, "flops": flops, "rounds": len(steps), **facts,
        "median_s": med, "q1_s": q1, "q3_s": q3, "iqr_rel": (q3 - q1) / med,
        "gflops": flops / med / 1e9, "floor_median_s": None, "floor_gflops": None,
        "reference": info.get("reference"), "vs_floor": None, "vs_reference": None,
        "vs_numpy": None, "vs_cpu": None,
        "cpu_per_wall": statistics.median(cpu[target].values()) if cpu.get(target) else None,
    }
    if floor:
        row["floor_median_s"] = statistics.median(floor.values())
        row["floor_gflops"] = flops / row["floor_median_s"] / 1e9
        ratios = [steps[r] / floor[r] for r in sorted(set(steps) & set(floor))]
        row["vs_floor"] = _ratio_dict(ratios, level)
        below = floor_flag(ratios, crit)
        if below:
            flags.append(below)
    for kind in ("forward", "backward"):
        timing = table.get((target, kind))
        row[f"{kind}_median_s"] = statistics.median(timing.values()) if timing else None
    row["flags"] = flags
    return row


def _compare(rows: dict[str, dict[str, Any]], table: Mapping, crit: Criteria,
             level: float) -> None:
    """Fill ``vs_numpy``, ``vs_reference`` and ``vs_cpu`` of one point's rows."""
    base = rows.get(BASELINE)
    cpu_rows = [r for t, r in rows.items() if r["role"] == "deepnet" and not r["gpu"]]
    for target, row in rows.items():
        steps = table[(target, "step")]
        if base is not None and target != BASELINE:
            row["vs_numpy"] = _verdict(paired_verdict(
                table[(BASELINE, "step")], steps, crit, _own(row) + _prefixed(base),
                confidence=level))
        ref = row.get("reference")
        if ref in rows and ref != target:
            row["vs_reference"] = _verdict(paired_verdict(
                steps, table[(ref, "step")], crit, _own(row) + _prefixed(rows[ref]),
                as_time_ratio=True, confidence=level))
        else:
            row["reference"] = None
        if row["gpu"] and row["role"] == "deepnet" and cpu_rows:
            cpu_steps = [table[(r["target"], "step")] for r in cpu_rows]
            common = set.intersection(*(set(c) for c in cpu_steps))
            best = {r: min(c[r] for c in cpu_steps) for r in common}
            flags = _own(row) + [f for r in cpu_rows for f in _prefixed(r)]
            row["vs_cpu"] = _verdict(paired_verdict(best, steps, crit, flags,
                                                    confidence=level))


def _own(row: Mapping[str, Any]) -> list[str]:
    return list(row["flags"])


def grid_share(rows: Sequence[Mapping[str, Any]], key: str = "vs_numpy"
               ) -> dict[str, int]:
    """How many comparisons of kind ``key`` the rows hold, and how many have each verdict:
    ``{"total": .., "clear": .., "faster": .., "slower": .., "same": .., "undecided": ..,
    "unreliable": ..}``."""
    counts = {"total": 0, "clear": 0, "faster": 0, "slower": 0, "same": 0, "undecided": 0,
              "unreliable": 0}
    for row in rows:
        v = row.get(key)
        if v is None:
            continue
        counts["total"] += 1
        counts[v["verdict"]] += 1
        counts["clear"] += v["verdict"] in CLEAR
    return counts
