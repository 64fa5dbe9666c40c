"""Does ``deepnet bench`` keep its verdicts honest under interference?

Runs the same sweep twice, quiet and with a background process spinning one core for the
whole sweep, then sets the two reports side by side: per comparison (each backend against
NumPy and against native PyTorch, at every point) the quiet and the noisy verdict, and
whether the noisy run states a verdict the quiet one contradicts (both clear, and
different). Also: the share of clear verdicts in each, and the time each run took against
its budget. Exits with status 1 if any verdict is contradicted.

    python benchmarks/interference.py                   # the default grid, ~5 minutes
    python benchmarks/interference.py --out /tmp/interference -- --backends numpy,torch

Arguments after ``--`` go to both ``deepnet bench`` runs. Run it when nothing else runs:
the "quiet" run is the reference. Writes ``quiet/``, ``noisy/`` and ``interference.md``
under ``--out``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from deepnet.bench.cases import pretty
from deepnet.bench.report import format_ratio
from deepnet.bench.results import load_results
from deepnet.bench.summary import grid_share, summarize
from deepnet.bench.verdicts import CLEAR

KEYS = {"vs_numpy": "vs NumPy", "vs_reference": "vs native PyTorch"}


def sweep(out: Path, extra: list[str], budget: float) -> float:
    """One ``deepnet bench`` run into ``out``; its wall time."""
    cmd = [sys.executable, "-m", "deepnet.bench", "--no-progress", "--time-budget",
           f"{budget:g}", "--out", str(out), *extra]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    with open(out.parent / f"{out.name}.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    return time.perf_counter() - t0


def verdicts(rows):
    out = {}
    for r in rows:
        for key in KEYS:
            if r.get(key):
                out[(r["dtype"], r["target"], r["n"], r["m"], key)] = r[key]
    return out


def _fmt(v) -> str:
    return "—" if not v else f"{v['verdict']} {format_ratio(v)}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("bench-interference"))
    p.add_argument("--budget", type=float, default=150.0,
                   help="--time-budget of each run (150, the default of deepnet bench)")
    p.add_argument("extra", nargs="*", help="arguments for deepnet bench (after --)")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    took = {"quiet": sweep(args.out / "quiet", args.extra, args.budget)}
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        took["noisy"] = sweep(args.out / "noisy", args.extra, args.budget)
    finally:
        spinner.kill()
        spinner.wait()
    runs = {name: load_results(args.out / name) for name in ("quiet", "noisy")}
    rows = {name: summarize(r) for name, r in runs.items()}
    quiet, noisy = verdicts(rows["quiet"]), verdicts(rows["noisy"])
    lines = ["# deepnet bench under interference", "",
             f"Quiet run, then the same run with `{sys.executable} -c 'while True: pass'` "
             f"spinning one core throughout; {os.cpu_count()} cores here.", "",
             "| run | wall time | budget | clear vs NumPy | clear vs native PyTorch |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name in ("quiet", "noisy"):
        cells = []
        for key in KEYS:
            c = grid_share(rows[name], key)
            cells.append(f"{c['clear']}/{c['total']} ({c['clear'] / max(c['total'], 1):.0%})")
        lines.append(f"| {name} | {took[name]:.1f} s | {args.budget:g} s | "
                     + " | ".join(cells) + " |")
    lines += ["", "| backend | n | m | comparison | quiet | noisy | |",
              "| --- | ---: | ---: | --- | --- | --- | --- |"]
    contradicted, unconfirmed = [], []
    for key in sorted(set(quiet) | set(noisy), key=lambda k: (k[0], k[2], k[3], k[1], k[4])):
        q, v = quiet.get(key), noisy.get(key)
        qv, nv = (q or {}).get("verdict", "—"), (v or {}).get("verdict", "—")
        note = ""
        if qv in CLEAR and nv in CLEAR and qv != nv:
            note = "**CONTRADICTED**"
            contradicted.append(key)
        elif nv in CLEAR and qv not in CLEAR:
            note = "not confirmed by the quiet run"
            unconfirmed.append(key)
        lines.append(f"| {pretty(key[1])} | {key[2]} | {key[3]} | {KEYS[key[4]]} | {_fmt(q)} "
                     f"| {_fmt(v)} | {note} |")
    lines += ["", f"Noisy verdicts contradicted by the quiet run: {len(contradicted)}; "
              f"stated under noise but undecided or unreliable when quiet: {len(unconfirmed)}."]
    text = "\n".join(lines) + "\n"
    (args.out / "interference.md").write_text(text)
    print(text)
    return 1 if contradicted else 0


if __name__ == "__main__":
    raise SystemExit(main())
