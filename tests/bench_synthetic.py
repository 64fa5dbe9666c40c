"""Synthetic ``deepnet bench`` results with known true ratios, for the bench tests.

``synthetic(speedups)`` builds a results dict (schema 2) whose samples are drawn around
chosen true step times: NumPy's step at ``(n, m)`` takes ``flops / 50 GFLOP/s``; every
other target's takes that divided by its true speedup; each deepnet backend's floor takes
its step ÷ 1.3; per-sample noise is log-normal (``noise`` = its sigma). The config says
the ``rounds`` were the first look (``repeat``): no rounds added while a verdict was open.
The CPU accounting says nobody else used the machine unless ``others_cores`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from deepnet.bench import layer_dims, step_flops
from deepnet.bench.results import SCHEMA

POINTS = ((64, 64), (64, 512), (256, 64), (256, 512), (1024, 64), (1024, 512))
TARGETS = {
    "numpy": {"role": "deepnet", "gpu": False, "reference": "pytorch@cpu"},
    "torch": {"role": "deepnet", "gpu": False, "reference": "pytorch@cpu"},
    "cupy": {"role": "deepnet", "gpu": True, "reference": "pytorch@cuda:0"},
    "pytorch@cpu": {"role": "reference", "gpu": False, "reference": None},
    "pytorch@cuda:0": {"role": "reference", "gpu": True, "reference": None},
}


def true_numpy_seconds(n: int, m: int) -> float:
    return step_flops(layer_dims(n), m) / 50e9


def synthetic(speedups: Mapping[str, Callable[[int, int], float] | float], *,
              points=POINTS, rounds: int = 8, noise: float = 0.01, seed: int = 0,
              floor_factor: float = 1.3, others_cores: Callable | None = None,
              transform: Callable | None = None, machine: Mapping | None = None) -> dict:
    """Results for ``numpy`` and the targets in ``speedups`` (``{target: speedup or
    f(n, m)}``: NumPy time ÷ the target's true time).

    ``others_cores(target, case, n, m, round)``: cores other processes took during a
    sample; ``transform(sample) -> sample``: a last edit of every sample (drift, outliers).
    """
    rng = np.random.default_rng(seed)
    targets = {"numpy": TARGETS["numpy"]}
    targets.update({t: TARGETS[t] for t in speedups})
    samples = []
    for n, m in points:
        base = true_numpy_seconds(n, m)
        for r in range(rounds):
            for target in targets:
                s = speedups.get(target, 1.0)
                speed = s(n, m) if callable(s) else s
                cases = ["step"] if TARGETS[target]["role"] == "reference" else ["step", "floor"]
                for case in cases:
                    true = base / speed / (floor_factor if case == "floor" else 1.0)
                    seconds = true * float(np.exp(rng.normal(0.0, noise)))
                    others = others_cores(target, case, n, m, r) if others_cores else 0.0
                    sample = {"target": target, "case": case, "n": n, "m": m,
                              "dtype": "float32", "round": r, "visit": 0, "seconds": seconds,
                              "cpu_s": 1.9 * seconds, "others_s": others * seconds,
                              "inner": 1, "t": 0.0}
                    if transform is not None:
                        sample = transform(sample)
                    samples.append(sample)
    return {
        "schema": SCHEMA, "created": "2026-12-02T00:00:00+00:00",
        "command": ["deepnet", "bench"],
        "config": {"repeat": rounds, "max_rounds": max(40, rounds), "pause_s": 0.2,
                   "criteria": None},
        "targets": targets,
        "machine": dict(machine or {"hostname": "h", "cpu": "test CPU", "cores_usable": 2,
                                    "versions": {"numpy": "2.4.6", "torch": "2.13.0"},
                                    "git": "abc123"}),
        "samples": samples, "skipped": [], "unavailable": [], "calibration": [],
        "points": [], "budget": {"budget_s": None, "deadline_s": None}, "source": "synthetic",
    }


def rows_by(rows, target, n, m):
    (row,) = [r for r in rows if (r["target"], r["n"], r["m"]) == (target, n, m)]
    return row
