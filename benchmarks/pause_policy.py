"""How long to let thread pools go idle between samples: the measurement behind the sweep's
choice (``deepnet.bench.timing.wait_idle`` at a change of library only).

OpenBLAS's workers spin ~0.1 s after a call and libgomp's a few ms; on a 2-core machine a
pool still spinning from NumPy's sample steals a core from torch's next one. This script
times NumPy's and the torch backend's step in alternating rounds under five policies,
interleaved in blocks so that the machine's state drifts evenly over all of them:

``none``          no wait at all;
``sleep``         0.2 s of sleep before every sample (the sweep's old rule);
``sleep-change``  0.2 s of sleep only when the next sample is of another library;
``idle``          wait until this process is idle (at most 0.2 s) before every sample;
``idle-change``   the same, only when the library changes (what the sweep does).

For each it prints torch ÷ NumPy (median of per-round ratios, 95 % interval) and the time
spent waiting. A policy that removes the skew agrees with ``sleep``; the cheapest such
policy wins.

    python benchmarks/pause_policy.py                 # (64, 512), (256, 512), ~1 minute
    python benchmarks/pause_policy.py --points 1024x64 --blocks 8
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from deepnet.bench.cases import deepnet_cases, library_of
from deepnet.bench.report import format_seconds
from deepnet.bench.stats import median_interval
from deepnet.bench.timing import SystemClock, calibrate, sample, wait_idle

POLICIES = ("none", "sleep", "sleep-change", "idle", "idle-change")


def run(policy, order, inner, clock, rounds, state):
    waited, ratios, t0 = 0.0, [], time.perf_counter()
    for _ in range(rounds):
        times = {}
        for case in order:
            lib = library_of(case.target)
            change = state["last"] is not None and lib != state["last"]
            if policy == "sleep" or (policy == "sleep-change" and change):
                time.sleep(0.2)
                waited += 0.2
            elif policy == "idle" or (policy == "idle-change" and change):
                w = wait_idle(clock, 0.2)
                waited += w
                if change:
                    state["waits"].setdefault(state["last"], []).append(w)
            state["last"] = lib
            times[(case.target, case.kind)] = sample(case, inner[id(case)], clock).seconds
        ratios.append(times[("torch", "step")] / times[("numpy", "step")])
    return ratios, waited, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--points", default="64x512,256x512")
    p.add_argument("--blocks", type=int, default=6, help="interleaved blocks (6)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per policy per block (3)")
    args = p.parse_args()
    clock = SystemClock()
    for text in args.points.split(","):
        n, m = (int(x) for x in text.split("x"))
        made = [deepnet_cases(t, n, m, kinds=["step", "floor"]) for t in ("numpy", "torch")]
        order = [made[0]["step"], made[0]["floor"], made[1]["step"], made[1]["floor"]]
        inner = {id(c): calibrate(c, 0.05, clock)[0] for c in order}
        got = {p: [[], 0.0, 0.0] for p in POLICIES}
        rng = random.Random(0)
        state = {"last": None, "waits": {}}
        for _ in range(args.blocks):
            policies = list(POLICIES)
            rng.shuffle(policies)
            for policy in policies:
                ratios, waited, spent = run(policy, order, inner, clock, args.rounds, state)
                got[policy][0] += ratios
                got[policy][1] += waited
                got[policy][2] += spent
        print(f"\nn = {n}, m = {m}: torch ÷ NumPy step time, {args.blocks * args.rounds} "
              "rounds per policy (median of per-round ratios [95% interval])")
        print("| policy | torch ÷ NumPy | waiting | total | waiting share |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for policy in POLICIES:
            ratios, waited, spent = got[policy]
            iv = median_interval(ratios, 0.95)
            ci = f"[{iv.lo:.3f}, {iv.hi:.3f}]" if iv else "[—]"
            print(f"| {policy} | {statistics.median(ratios):.3f} {ci} | "
                  f"{format_seconds(waited)} | {format_seconds(spent)} | "
                  f"{waited / spent:.0%} |")
        for lib, waits in sorted(state["waits"].items()):
            print(f"waiting for idle pools after a {lib} sample: median "
                  f"{format_seconds(statistics.median(waits))} (min "
                  f"{format_seconds(min(waits))}, max {format_seconds(max(waits))}, "
                  f"{len(waits)} waits)")


if __name__ == "__main__":
    main()
