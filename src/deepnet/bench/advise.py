"""``deepnet bench --advise N M``: which backend to use at width ``N`` and batch ``M``,
answered from the measured grid only.

Inside the grid the answer rests on the bracketing points (the measured widths and
batches just below and above, or the point itself), each comparison with its interval;
a backend is advised only where it is faster than, or the same as, every other at every
bracketing point, by clear verdicts. Outside the grid there is no answer, only the
command that would measure it.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from deepnet.bench.cases import BASELINE, pretty
from deepnet.bench.report import MARKS, format_ratio, format_seconds
from deepnet.bench.summary import criteria_of, point_table, summarize, verdict_level
from deepnet.bench.verdicts import Criteria, paired_verdict

__all__ = ["advise", "bracket"]


def bracket(values: Sequence[int], x: int) -> list[int] | None:
    """The measured values around ``x``: ``[x]`` when measured, ``[below, above]``
    inside, ``None`` outside."""
    vs = sorted(set(values))
    if not vs or x < vs[0] or x > vs[-1]:
        return None
    i = bisect.bisect_left(vs, x)
    return [x] if vs[i] == x else [vs[i - 1], vs[i]]


def _where(results: Mapping[str, Any], dtype: str) -> str:
    machine = results.get("machine") or {}
    gpu = (machine.get("gpu") or {}).get("name")
    return (f"Answering from {results.get('source', 'the saved results')} (measured "
            f"{str(results.get('created', '?'))[:10]} on {machine.get('cpu')}, "
            f"{machine.get('cores_usable')} usable cores" + (f", {gpu}" if gpu else "")
            + f"; {dtype}).")


def _pick_dtype(rows: Sequence[Mapping[str, Any]], dtype: str | None) -> str:
    dtypes = sorted({r["dtype"] for r in rows})
    if not rows:
        raise ValueError("the results hold no step timings to advise from")
    if dtype is None:
        return "float32" if "float32" in dtypes else dtypes[0]
    if dtype not in dtypes:
        raise ValueError(f"the results hold no {dtype} timings; they hold {', '.join(dtypes)}")
    return dtype


def _best(results: Mapping[str, Any], dtype: str, n: int, m: int, crit: Criteria
          ) -> tuple[dict[str, str], dict[str, Any]]:
    """At one point: for each deepnet backend, ``"best"`` (faster than every other by clear
    verdicts), ``"tied"`` (faster or the same as every other) or why not; and the rows."""
    rows, table = point_table(results, dtype, n, m, crit)
    ours = [t for t, r in rows.items() if r["role"] == "deepnet"]
    # usable rounds, as summarize counts them: the sweep's looks are scheduled in them
    level = verdict_level(results, crit, max((r["rounds_total"] - r["rounds_set_aside"]
                                               for r in rows.values()), default=0))
    status = {}
    for a in ours:
        worst = "best"
        for b in ours:
            if a == b:
                continue
            flags = [f"{pretty(x)}: {f}" for x in (a, b) for f in rows[x]["flags"]]
            v = paired_verdict(table[(b, "step")], table[(a, "step")], crit, flags,
                               confidence=level)
            label = "undecided" if v is None else v.label
            if label == "same" and worst == "best":
                worst = "tied"
            elif label not in ("faster", "same"):
                worst = f"{label} against {pretty(b)}"
                break
        status[a] = worst
    return status, rows


def advise(results: Mapping[str, Any], n: int, m: int, dtype: str | None = None,
           criteria: Criteria | None = None) -> str:
    """The advice for width ``n`` and batch ``m``, as printed by ``--advise``."""
    crit = criteria_of(results, criteria)
    rows = summarize(results, crit)
    dtype = _pick_dtype(rows, dtype)
    rows = [r for r in rows if r["dtype"] == dtype]
    widths = sorted({r["n"] for r in rows})
    batches = sorted({r["m"] for r in rows})
    lines = [_where(results, dtype)]
    bn, bm = bracket(widths, n), bracket(batches, m)
    if bn is None or bm is None:
        lines += [
            f"(n = {n}, m = {m}) is outside the measured grid (widths {widths[0]}–"
            f"{widths[-1]}, batches {batches[0]}–{batches[-1]}): these results cannot "
            "answer for it, and the nearest point is no substitute.",
            f"Measure it: deepnet bench --widths {n} --batches {m}   (or add --points "
            f"{n}x{m} to a sweep)."]
        return "\n".join(lines)
    corners = [(w, b) for w in bn for b in bm]
    measured = {(r["n"], r["m"]) for r in rows}
    missing = [c for c in corners if c not in measured]
    if missing:
        lines += [f"(n = {n}, m = {m}) lies inside the grid, but the bracketing point(s) "
                  + ", ".join(f"(n = {a}, m = {b})" for a, b in missing) + " were not "
                  "measured (skipped or capped); no answer.",
                  f"Measure it: deepnet bench --widths {n} --batches {m}"]
        return "\n".join(lines)
    if corners == [(n, m)]:
        lines.append(f"(n = {n}, m = {m}) was measured.")
    else:
        lines.append(f"(n = {n}, m = {m}) was not measured; it lies inside the grid, and "
                     "the answer rests on the bracketing points "
                     + ", ".join(f"(n = {a}, m = {b})" for a, b in corners) + ".")
    lines.append(f"Speedup vs NumPy (median of per-round ratios [{crit.confidence:.0%} "
                 "interval]; ▲ faster, ▼ slower, = same within "
                 f"±{crit.band:.0%}, ? no clear difference, ! unreliable):")
    at = {(r["n"], r["m"], r["target"]): r for r in rows}
    targets = list(dict.fromkeys(r["target"] for r in rows))
    for t in targets:
        parts = []
        for a, b in corners:
            r = at.get((a, b, t))
            if r is None:
                parts.append(f"({a}, {b}) not measured")
                continue
            v = r.get("vs_numpy")
            text = (f"{format_seconds(r['median_s'])}/step" if v is None
                    else f"{MARKS[v['verdict']]} {format_ratio(v, '×')}")
            if v is not None and v["verdict"] in ("undecided", "unreliable"):
                text += f" ({v['why']})"
            parts.append(f"({a}, {b}) {text}")
        lines.append(f"  {pretty(t)}: " + "; ".join(parts))
    verdicts = {c: _best(results, dtype, *c, crit)[0] for c in corners}
    ours = [t for t in targets if all(t in verdicts[c] for c in corners)]
    best = [t for t in ours if all(verdicts[c][t] in ("best", "tied") for c in corners)]
    where = "here" if len(corners) == 1 else f"at all {len(corners)} bracketing points"
    if len(best) == 1:
        tied = any(verdicts[c][best[0]] == "tied" for c in corners)
        how = "faster than, or the same as," if tied else "faster than"
        lines.append(f"Advice: use {pretty(best[0])}: {how} every other backend measured "
                     f"{where} (clear verdicts).")
    elif best:
        lines.append("Advice: " + " or ".join(pretty(t) for t in best) + f": {where} they "
                     f"are the same within ±{crit.band:.0%} and faster than, or the same "
                     "as, the others (clear verdicts).")
    else:
        why = []
        for c in corners:
            top = [f"{pretty(t)} {s}" for t, s in verdicts[c].items()
                   if s not in ("best", "tied")]
            if len(top) == len(verdicts[c]):
                why.append(f"at (n = {c[0]}, m = {c[1]}) no backend is clearly fastest "
                           f"({'; '.join(top[:2])})")
        lines.append("Advice: none with confidence: "
                     + ("; ".join(why) if why else "the bracketing points disagree")
                     + f". Measure it: deepnet bench --widths {n} --batches {m}")
    if BASELINE not in targets:
        lines.append("(NumPy was not measured in these results: no speedups vs NumPy.)")
    return "\n".join(lines)
