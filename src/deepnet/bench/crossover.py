"""Crossovers from verdicts: from which width on a backend is faster than NumPy (or a GPU
than the fastest CPU backend), at each batch size, stated only where the verdicts allow.

Along the widths measured at one batch size, from the largest down, the run of "faster"
verdicts gives the crossover; it is exact when the verdict just below the run is a clear
"slower" or "same", an upper bound when that one is undecided or unreliable. With no
"faster" at the largest width, the backend is "never faster in this grid" only when the
verdict there is clear. Widths measured at that batch size for other backends but not
for this one count as "no verdict" (a hole in the grid cannot bound a crossover), and a
backend faster at some width but not at a larger one has no crossover: the widths where
it is faster are listed instead ("mixed").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deepnet.bench.cases import pretty
from deepnet.bench.verdicts import CLEAR

__all__ = ["Crossover", "crossover", "crossover_map", "crossover_sentence", "crossovers"]


@dataclass(frozen=True)
class Crossover:
    """At one batch size: ``state`` is ``"from"`` (faster from ``width`` on, slower or the
    same below), ``"from_at_most"`` (faster from ``width`` on; ``unclear`` just below has
    no verdict), ``"all"`` (faster at every width, from ``width``, the smallest),
    ``"never"`` (clear verdicts that it is faster at no width), ``"mixed"`` (faster at the
    widths ``faster``, but not faster, or undecided, at a larger one) or ``"unclear"``
    (no verdict at the largest width, ``unclear``)."""

    state: str
    width: int | None = None
    unclear: int | None = None
    faster: tuple[int, ...] = ()


def crossover(labels: Sequence[tuple[int, str]]) -> Crossover:
    """The crossover along ``(width, verdict)`` pairs of one batch size."""
    pts = sorted(labels)
    if not pts:
        raise ValueError("no widths to find a crossover in")
    i = len(pts)
    while i > 0 and pts[i - 1][1] == "faster":
        i -= 1
    earlier = tuple(n for n, v in pts[:i] if v == "faster")
    if earlier:  # faster somewhere, then not at a larger width: no single crossover
        return Crossover("mixed", faster=earlier + tuple(n for n, _ in pts[i:]))
    if i == len(pts):
        top_n, top = pts[-1]
        return Crossover("never") if top in CLEAR else Crossover("unclear", unclear=top_n)
    if i == 0:
        return Crossover("all", pts[0][0])
    below_n, below = pts[i - 1]
    if below in CLEAR:
        return Crossover("from", pts[i][0])
    return Crossover("from_at_most", pts[i][0], below_n)


def crossovers(rows: Sequence[Mapping[str, Any]], key: str = "vs_numpy"
               ) -> dict[tuple[str, str], dict[int, Crossover]]:
    """``{(dtype, target): {m: Crossover}}`` for the rows that have the ratio ``key``."""
    found: dict[tuple[str, str], dict[int, list[tuple[int, str]]]] = defaultdict(
        lambda: defaultdict(list))
    widths: dict[tuple[str, int], set[int]] = defaultdict(set)
    for row in rows:
        widths[(row["dtype"], row["m"])].add(row["n"])
        v = row.get(key)
        if v is not None:
            found[(row["dtype"], row["target"])][row["m"]].append((row["n"], v["verdict"]))
    for (dtype, _), per_m in found.items():
        for m, pts in per_m.items():  # the grid's widths this comparison lacks: no verdict
            pts += [(n, "missing") for n in widths[(dtype, m)] - {n for n, _ in pts}]
    return {k: {m: crossover(pts) for m, pts in sorted(per_m.items())}
            for k, per_m in found.items()}


def crossover_sentence(target: str, per_batch: Mapping[int, Crossover],
                       than: str = "NumPy") -> str:
    """E.g. ``"torch is faster than NumPy from n = 256 at m = 512, at every width
    measured at m = 4096; never in this grid at m = 64; no clear verdict at m = 16
    (n = 1024)."``"""
    faster, never, unclear = [], [], []
    for m, c in sorted(per_batch.items()):
        if c.state == "from":
            faster.append(f"from n = {c.width} at m = {m}")
        elif c.state == "from_at_most":
            faster.append(f"from n = {c.width} or earlier at m = {m} (no verdict at "
                          f"n = {c.unclear})")
        elif c.state == "all":
            faster.append(f"at every width measured (from n = {c.width}) at m = {m}")
        elif c.state == "never":
            never.append(str(m))
        elif c.state == "mixed":
            faster.append(f"at n = {', '.join(map(str, c.faster))} at m = {m} (no "
                          "crossover: not faster, or no verdict, at a larger width)")
        else:
            unclear.append(f"m = {m} (n = {c.unclear})")
    who = pretty(target)
    parts = []
    if faster:
        parts.append(f"{who} is faster than {than} " + ", ".join(faster))
    if never and len(never) == len(per_batch):
        parts.append(f"{who} is never faster than {than} in this grid")
    elif never:
        where = f"at m = {', '.join(never)}"
        parts.append(f"never in this grid {where}" if parts
                     else f"{who} is never faster than {than} {where} in this grid")
    if unclear:
        text = "no clear verdict at the largest width at " + ", ".join(unclear)
        parts.append(text if parts else f"{who} vs {than}: {text}")
    return "; ".join(parts) + "."


def crossover_map(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """The sentences, per dtype: each backend against NumPy, each GPU against the CPU."""
    out: dict[str, list[str]] = defaultdict(list)
    for (dtype, target), per_m in crossovers(rows, "vs_numpy").items():
        out[dtype].append(crossover_sentence(target, per_m))
    for (dtype, target), per_m in crossovers(rows, "vs_cpu").items():
        out[dtype].append(crossover_sentence(target, per_m, "the fastest CPU backend"))
    return dict(out)
