"""``deepnet.bench.cases`` and ``deepnet.bench.timing``: shapes, flops, names; every case
runs on every backend; calibration, samples, CPU accounting and the wait for idle pools."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

import deepnet as dn
from deepnet.bench import cases, timing

# -- shapes, flops, names ------------------------------------------------------------------


def test_layer_dims_are_four_hidden_layers_and_one_output():
    assert cases.layer_dims(64) == [64, 64, 64, 64, 64, 1]


@pytest.mark.parametrize("n, m", [(64, 64), (256, 512), (1024, 4096)])
def test_step_flops_is_six_sum_n_l_n_lm1_m(n, m):
    assert cases.step_flops(cases.layer_dims(n), m) == 6 * (4 * n * n + n) * m
    assert cases.step_flops([3, 5, 2], 7) == 6 * (5 * 3 + 2 * 5) * 7


def test_floor_is_fourteen_matmuls_without_dA0():
    dims, m = cases.layer_dims(8), 3
    ops = cases.floor_matmuls(dims, m)
    assert len(ops) == 14
    flops = sum(2 * rows * inner * cols for _, rows, inner, cols in ops)
    assert flops == cases.step_flops(dims, m) - 2 * dims[1] * dims[0] * m
    assert not any(what.startswith("dA0") for what, *_ in ops)


def test_target_names():
    assert cases.parse_target("torch:cuda:1") == ("torch", "cuda:1")
    assert cases.parse_target("numpy") == ("numpy", None)
    assert [cases.is_gpu(t) for t in ("numpy", "torch", "torch:cuda", "cupy", "pytorch@cpu",
                                      "pytorch@cuda:0")] == [False, False, True, True, False,
                                                             True]
    assert cases.reference_target("numpy") == "pytorch@cpu"
    assert cases.reference_target("array_api_strict:device1") == "pytorch@cpu"
    assert cases.reference_target("torch:cuda") == "pytorch@cuda:0"
    assert cases.reference_target("torch:cuda:1") == "pytorch@cuda:1"
    assert cases.reference_target("cupy:1") == "pytorch@cuda:1"
    assert [cases.library_of(t) for t in ("numpy", "array_api_strict", "torch", "pytorch@cpu",
                                          "cupy")] == ["numpy", "numpy", "torch", "torch",
                                                       "cupy"]
    assert cases.pretty("pytorch@cuda:0") == "native PyTorch (cuda:0)"


def test_large_points():
    assert cases.is_large("numpy", 4096, 64) and not cases.is_large("numpy", 1024, 4096)
    assert cases.is_large("array_api_strict", 1024, 64)
    assert not cases.is_large("array_api_strict", 256, 4096)
    assert not cases.is_large("cupy", 8192, 8192)


# -- the cases, once on every backend ------------------------------------------------------


def test_cases_run_and_the_step_trains(backend):
    made = cases.deepnet_cases(backend.label, 6, 32, "float64", seed=3)
    assert sorted(made) == sorted(cases.DEEPNET_CASES)
    AL = dn.to_numpy(made["forward"]())
    assert AL.shape == (1, 32) and np.all((AL > 0) & (AL < 1))
    grads = made["backward"]()
    assert dn.to_numpy(grads["dW1"]).shape == (6, 6)
    costs = [float(dn.to_numpy(made["step"]())) for _ in range(300)]
    assert all(math.isfinite(c) for c in costs)
    assert costs[-1] < costs[0], (costs[0], costs[-1])
    out = made["floor"]()
    assert backend.owns(out) and dn.to_numpy(out).shape == (6, 32)
    with pytest.raises(ValueError, match="unknown case kinds"):
        cases.deepnet_cases(backend.label, 6, 32, kinds=["sideways"])


def test_floor_writes_every_product(backend):
    """With ``out=`` the floor's outputs must hold the products, not stale buffers."""
    case = cases.floor_case(backend, backend.label, 5, 7, "float64", seed=1)
    first = dn.to_numpy(case())
    assert np.all(np.isfinite(first)) and np.any(first != 0)
    np.testing.assert_allclose(dn.to_numpy(case()), first)


def test_reference_step_trains():
    pytest.importorskip("torch")
    case = cases.reference_case("cpu", 6, 32, "float64", seed=0)
    losses = [float(case().detach()) for _ in range(300)]
    assert losses[-1] < losses[0]


# -- timing --------------------------------------------------------------------------------


def test_calibrate_and_sample_count_calls():
    clock = timing.SystemClock()
    calls = []
    case = cases.Case("numpy", "step", lambda: calls.append(1), lambda: None)
    inner, first = timing.calibrate(case, 0.0, clock)
    assert inner == 1 and first >= 0 and len(calls) == 2  # the first call, then a timed one
    calls.clear()
    slow = cases.Case("numpy", "step", lambda: (calls.append(1), time.sleep(0.002)),
                      lambda: None)
    inner, _ = timing.calibrate(slow, 0.02, clock)
    assert 2 <= inner <= 10, inner  # ~0.02 s / 0.002 s per call (sleep may overshoot)
    calls.clear()
    t = timing.sample(case, 7, clock)
    assert len(calls) == 7 and t.seconds >= 0 and t.cpu_s >= 0
    assert t.others_s is None or t.others_s >= 0


def test_others_seconds():
    a = timing.Reading(0.0, 0.0, busy=10.0, own=4.0)
    b = timing.Reading(1.0, 1.0, busy=12.5, own=5.0)
    assert timing.others_seconds(a, b) == pytest.approx(1.5)
    assert timing.others_seconds(a, timing.Reading(1.0, 1.0)) is None
    assert timing.others_seconds(b, a) == 0.0  # never below 0 (tick rounding)


def test_system_clock_reads_proc_where_it_exists():
    clock = timing.SystemClock()
    r = clock.read()
    assert r.wall > 0 and r.cpu >= 0
    if clock.proc:
        assert r.busy >= r.own >= 0


class _SpinClock:
    """The process keeps ``spin`` cores busy until ``until``, then idles."""

    def __init__(self, until: float, spin: float = 1.0):
        self.t, self.until, self.spin, self.c = 0.0, until, spin, 0.0

    def now(self):
        return self.t

    def cpu(self):
        return self.c

    def sleep(self, s):
        busy = max(0.0, min(self.t + s, self.until) - self.t)
        self.c += busy * self.spin
        self.t += s


def test_wait_idle_waits_until_the_pools_stop_spinning():
    assert timing.wait_idle(_SpinClock(until=0.1), 0.2) == pytest.approx(0.105)
    assert timing.wait_idle(_SpinClock(until=0.0), 0.2) == pytest.approx(0.005)
    assert timing.wait_idle(_SpinClock(until=9.0), 0.2) == pytest.approx(0.2)  # the cap
    assert timing.wait_idle(_SpinClock(until=9.0), 0.0) == 0.0


def test_process_age_counts_from_the_start_of_the_process():
    import subprocess
    import sys

    age = timing.process_age()
    assert age >= 0
    out = subprocess.run([sys.executable, "-c", "import time; time.sleep(0.3); "
                          "from deepnet.bench.timing import process_age; print(process_age())"],
                         capture_output=True, text=True, check=True)
    assert float(out.stdout) >= 0.25 or float(out.stdout) == 0.0  # 0: no /proc here


def test_busy_ticks_count_only_the_cores_this_process_may_use():
    stat = ("cpu  100 0 50 1000 10 1 1 5 0 0\n"
            "cpu0 40 0 20 500 5 1 1 2 0 0\n"
            "cpu1 60 0 30 500 5 0 0 3 0 0\n"
            "intr 12345\nctxt 999\n")
    assert timing.busy_ticks(stat, None) == (40 + 20 + 1 + 1 + 2) + (60 + 30 + 3)
    assert timing.busy_ticks(stat, {1}) == 60 + 30 + 3
    assert timing.busy_ticks(stat, {7}) is None
    assert timing.busy_ticks("intr 1\n", None) is None
