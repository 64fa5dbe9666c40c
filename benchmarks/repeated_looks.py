"""How often the adaptive sweep's repeated looks end in a wrong verdict.

Each extra round re-tests a comparison, which inflates a test's error rate. This runs the
real sweep (``deepnet.bench.sweep.Sweep``) on the simulated clock and cases of
``tests/test_bench_sweep.py`` — one grid point, torch at a chosen true speedup over NumPy,
log-normal noise per sample — many times, and counts the verdicts.

    python benchmarks/repeated_looks.py                  # 1.00 1.03 1.05 1.07, 100 sweeps each
    python benchmarks/repeated_looks.py --speedups 0.95,1.0 --sweeps 200 --noise 0.05
    python benchmarks/repeated_looks.py --speedups 1.05 --sweeps 2000 --budget 0
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import test_bench_sweep as sim

from deepnet.bench import sweep
from deepnet.bench.summary import summarize


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--speedups", default="1.0,1.03,1.05,1.07")
    p.add_argument("--sweeps", type=int, default=100)
    p.add_argument("--noise", type=float, default=0.03, help="sigma of log time per sample")
    p.add_argument("--budget", type=float, default=60.0,
                   help="simulated seconds per sweep (0: none, every look up to 40 rounds)")
    args = p.parse_args()
    budget = args.budget or None
    print(f"torch's true speedup over NumPy at (256, 512), noise {args.noise:g}, "
          f"{args.sweeps} sweeps of {f'{budget:g} simulated seconds' if budget else 'no budget'}"
          " each; band ±5%")
    for text in args.speedups.split(","):
        true = float(text)
        counts: Counter[str] = Counter()
        rounds = 0
        for seed in range(args.sweeps):
            clock = sim.FakeClock()
            config = sim._config(widths=[256], batches=[512], time_budget=budget,
                                 min_time=0.01)
            build = sim.fake_build(clock, {"torch": true}, noise=args.noise, seed=seed)
            results = sweep.Sweep(config, clock=clock, build=build, machine={}).run()
            (row,) = [r for r in summarize(results) if r["target"] == "torch"]
            counts[row["vs_numpy"]["verdict"]] += 1
            rounds += max(p["rounds"] for p in results["points"])
        print(f"{true:g}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
              + f"; {rounds / args.sweeps:.1f} rounds a sweep")


if __name__ == "__main__":
    main()
