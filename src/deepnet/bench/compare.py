"""``deepnet bench compare A.json B.json``: two runs point by point (two machines, or
before and after a change), in the manner of ``asv compare`` and
``pytest-benchmark compare``.

At each (dtype, backend, n, m) both runs measured, the ratio of step times ``B ÷ A`` is
the Hodges-Lehmann estimate over the two runs' usable rounds, with its exact
Mann-Whitney interval (the runs share no rounds, so per-round ratios do not apply):
``regression`` when the interval lies above ``1 + band``, ``improvement`` below
``1 / (1 + band)``, ``same`` inside the band, else ``no clear difference``; a point that
either run flagged unreliable is ``unreliable``, never a regression or an improvement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deepnet.bench.cases import pretty
from deepnet.bench.machine import blas_summary
from deepnet.bench.report import format_ratio, format_seconds
from deepnet.bench.stats import Interval, shift_interval
from deepnet.bench.summary import criteria_of, point_table
from deepnet.bench.verdicts import Criteria

__all__ = ["Change", "compare_runs", "render_compare", "setup_differences"]

_LABELS = {"slower": "REGRESSION", "faster": "improvement", "same": "same",
           "undecided": "no clear difference", "unreliable": "unreliable"}


@dataclass(frozen=True)
class Change:
    """One point of a comparison: ``label`` is ``slower`` (a regression), ``faster`` (an
    improvement), ``same``, ``undecided`` or ``unreliable``; ``ratio`` is ``B ÷ A``."""

    dtype: str
    target: str
    n: int
    m: int
    a_s: float
    b_s: float
    ratio: Interval | None
    label: str
    why: str = ""


def _steps(results: Mapping[str, Any], crit: Criteria
           ) -> dict[tuple[str, str, int, int], tuple[list[float], list[str], float]]:
    """``{(dtype, target, n, m): (usable step times, flags, median)}`` of one run."""
    points = sorted({(s["dtype"], s["n"], s["m"]) for s in results.get("samples") or []})
    out = {}
    for dtype, n, m in points:
        rows, table = point_table(results, dtype, n, m, crit)
        for target, row in rows.items():
            out[(dtype, target, n, m)] = (list(table[(target, "step")].values()),
                                          list(row["flags"]), row["median_s"])
    return out


def compare_runs(a: Mapping[str, Any], b: Mapping[str, Any],
                 criteria: Criteria | None = None) -> tuple[list[Change], list, list]:
    """``(changes, only in A, only in B)``; ``criteria`` default to B's."""
    crit = criteria_of(b, criteria)
    sa, sb = _steps(a, crit), _steps(b, crit)
    changes = []
    up, down = 1.0 + crit.band, 1.0 / (1.0 + crit.band)
    for key in sorted(set(sa) & set(sb)):
        (ta, fa, ma), (tb, fb, mb) = sa[key], sb[key]
        iv = shift_interval(ta, tb, crit.confidence)
        flags = [f"A: {f}" for f in fa] + [f"B: {f}" for f in fb]
        if flags:
            label, why = "unreliable", "; ".join(flags)
        elif iv is None:
            label = "undecided"
            why = (f"{len(ta)} and {len(tb)} usable rounds: too few for a "
                   f"{crit.confidence:.0%} interval")
        elif iv.lo > up:
            label, why = "slower", ""
        elif iv.hi < down:
            label, why = "faster", ""
        elif iv.lo >= down and iv.hi <= up:
            label, why = "same", ""
        else:
            label, why = "undecided", (f"the interval [{iv.lo:.3g}, {iv.hi:.3g}] reaches "
                                       f"across the ±{crit.band:.0%} band")
        changes.append(Change(key[0], key[1], key[2], key[3], ma, mb, iv, label, why))
    return changes, sorted(set(sa) - set(sb)), sorted(set(sb) - set(sa))


def _describe(name: str, results: Mapping[str, Any]) -> list[str]:
    machine = results.get("machine") or {}
    gpu = (machine.get("gpu") or {}).get("name")
    versions = ", ".join(f"{k} {v}" for k, v in (machine.get("versions") or {}).items() if v)
    return [f"{name}: {results.get('source', '?')}",
            f"   {results.get('created')}; host `{machine.get('hostname')}`, "
            f"{machine.get('cpu')}, {machine.get('cores_usable')} usable cores"
            + (f", GPU {gpu}" if gpu else "") + f"; git {machine.get('git')}",
            f"   Python {machine.get('python')}; {versions}",
            f"   BLAS: {blas_summary(machine)}"]


def setup_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """What differs between the machines of two runs, beyond the code: host, CPU, usable
    cores, GPU, Python, the BLAS and its threads, the speed-relevant environment."""
    ma, mb = a.get("machine") or {}, b.get("machine") or {}
    out = []
    for key, what in (("hostname", "host"), ("cpu", "CPU"), ("cores_usable", "usable cores"),
                      ("python", "Python")):
        if ma.get(key) != mb.get(key):
            out.append(f"{what} {ma.get(key)} → {mb.get(key)}")
    ga, gb = (ma.get("gpu") or {}).get("name"), (mb.get("gpu") or {}).get("name")
    if ga != gb:
        out.append(f"GPU {ga} → {gb}")
    if blas_summary(dict(ma)) != blas_summary(dict(mb)):
        out.append(f"BLAS {blas_summary(dict(ma))} → {blas_summary(dict(mb))}")
    ea, eb = ma.get("env") or {}, mb.get("env") or {}
    out += [f"{k}={ea.get(k)} → {eb.get(k)}" for k in sorted(set(ea) | set(eb))
            if ea.get(k) != eb.get(k)]
    return out


def _version_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    va = (a.get("machine") or {}).get("versions") or {}
    vb = (b.get("machine") or {}).get("versions") or {}
    return [f"{k} {va.get(k)} → {vb.get(k)}" for k in sorted(set(va) | set(vb))
            if va.get(k) != vb.get(k)]


def render_compare(a: Mapping[str, Any], b: Mapping[str, Any], changes: Sequence[Change],
                   only_a: Sequence, only_b: Sequence, criteria: Criteria | None = None
                   ) -> str:
    """The comparison as printed: both machines, the table, a summary line."""
    crit = criteria_of(b, criteria)
    lines = ["# deepnet bench compare", "", *_describe("A", a), *_describe("B", b)]
    diff = _version_diff(a, b)
    setup = setup_differences(a, b)
    both = "; ".join(setup + diff) or "none in machine and versions"
    lines += [f"Differences: {both}",
              "", f"B ÷ A: ratio of step times (Hodges-Lehmann over both runs' rounds, "
              f"[{crit.confidence:.0%} Mann-Whitney interval]); above 1 B is slower. "
              f"REGRESSION / improvement only when the interval clears ±{crit.band:.0%}.", "",
              "| backend | dtype | n | m | A time/step | B time/step | B ÷ A | change |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    notes = []
    for c in changes:
        ratio: dict[str, float | None] = (
            {"estimate": c.b_s / c.a_s, "lo": None} if c.ratio is None
            else {"estimate": c.ratio.estimate, "lo": c.ratio.lo, "hi": c.ratio.hi})
        label = _LABELS[c.label]
        if c.why:
            notes.append(c.why)
            label += f" [{len(notes)}]"
        lines.append(f"| {pretty(c.target)} | {c.dtype} | {c.n} | {c.m} | "
                     f"{format_seconds(c.a_s)} | {format_seconds(c.b_s)} | "
                     f"{format_ratio(ratio)} | {label} |")
    lines += [f"{i}. {note}" for i, note in enumerate(notes, 1)]
    if setup:
        lines += ["", "WARNING: the two runs were measured on different setups ("
                  + "; ".join(setup) + "): a regression or improvement below is the setup's "
                  "as much as the code's; compare runs of one machine to judge a change."]
    count = {k: [c for c in changes if c.label == k] for k in _LABELS}
    lines += ["", f"{len(count['slower'])} regression(s), {len(count['faster'])} "
              f"improvement(s), {len(count['same'])} the same within ±{crit.band:.0%}, "
              f"{len(count['undecided'])} without a clear difference, "
              f"{len(count['unreliable'])} unreliable, of {len(changes)} points in both runs."]
    for what, keys in (("A", only_a), ("B", only_b)):
        if keys:
            lines.append(f"Only in {what}: " + ", ".join(
                f"{pretty(t)} n = {n}, m = {m} ({d})" for d, t, n, m in keys))
    return "\n".join(lines) + "\n"
