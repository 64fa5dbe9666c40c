"""``deepnet.bench.sweep``: the adaptive sweep on a fake clock (deterministic: budgets,
extra rounds, interference set aside, skipped points), and once for real on NumPy."""

from __future__ import annotations

import json
import math
import statistics
import sys
import types

import numpy as np
import pytest

from deepnet.bench import grid, plan, sweep
from deepnet.bench.cases import Case, layer_dims, reference_target, step_flops
from deepnet.bench.results import load_results
from deepnet.bench.timing import Reading
from deepnet.bench.verdicts import Criteria


class FakeClock:
    """Simulated time: work advances it; ``others`` cores of other processes run along."""

    def __init__(self, others=lambda t: 0.0, threads: int = 2):
        self.t = self.cpu_t = self.busy = 0.0
        self.others, self.threads = others, threads

    def now(self) -> float:
        return self.t

    def cpu(self) -> float:
        return self.cpu_t

    def sleep(self, seconds: float) -> None:
        self.busy += seconds * self.others(self.t)
        self.t += seconds

    def work(self, seconds: float) -> None:
        self.busy += seconds * (self.threads + self.others(self.t))
        self.cpu_t += seconds * self.threads
        self.t += seconds

    def read(self) -> Reading:
        return Reading(self.t, self.cpu_t, self.busy, self.cpu_t)


def fake_build(clock: FakeClock, speedups: dict, noise: float = 0.01, seed: int = 0,
               slow=lambda t: 1.0):
    """A ``build`` whose cases advance the fake clock by NumPy's time ÷ the target's
    speedup (flops at 50 GFLOP/s), with log-normal noise; floors take step ÷ 1.3."""
    rng = np.random.default_rng(seed)

    def build(config, results, n, m, dtype):
        cases = {}
        targets = list(config.backends)
        if config.reference:
            targets += list(dict.fromkeys(reference_target(t) for t in config.backends))
        for t in targets:
            cap = grid.width_cap(config, t)
            if cap is not None and n > cap:
                grid.skip(results, t, n, m, dtype, f"n > {cap}")
                continue
            base = max(step_flops(layer_dims(n), m) / 50e9, 1e-3)
            s = speedups.get(t, 1.0)
            speed = s(n, m) if callable(s) else s
            kinds = ["step"] if t.startswith("pytorch@") else ["step", "floor"]
            for kind in kinds:
                true = base / speed / (1.3 if kind == "floor" else 1.0)
                cases[(t, kind)] = Case(
                    t, kind,
                    lambda true=true: clock.work(true * slow(clock.t)
                                                 * float(np.exp(rng.normal(0, noise)))),
                    lambda: None)
        return cases

    return build


def _config(**kw) -> grid.Config:
    base = {"backends": ["numpy", "torch"], "widths": [64, 256], "batches": [64, 512],
            "dtypes": ["float32"], "reference": False, "min_time": 0.01}
    base.update(kw)
    return grid.Config(**base)


def _run(config, clock, speedups, **kw):
    return sweep.Sweep(config, clock=clock, build=fake_build(clock, speedups, **kw),
                       machine={"hostname": "fake", "cores_usable": 2}).run()


def test_clear_differences_settle_in_the_first_rounds():
    clock = FakeClock()
    results = _run(_config(time_budget=60.0), clock, {"torch": 1.5})
    rounds = {(p["n"], p["m"]): p["rounds"] for p in results["points"]}
    assert set(rounds.values()) == {6}  # repeat = 6, nothing left open
    from deepnet.bench.summary import summarize

    rows = summarize(results)
    assert {r["vs_numpy"]["verdict"] for r in rows if r["target"] == "torch"} == {"faster"}
    assert results["budget"]["sweep_s"] < 60.0


def test_open_verdicts_get_more_rounds_within_the_budget():
    """A true speedup of 1.08 with 3 % noise: 6 rounds cannot separate it from the ±5 %
    band, more rounds can; the budget is never exceeded by more than a round."""
    clock = FakeClock()
    budget = 40.0
    results = _run(_config(time_budget=budget, max_rounds=60), clock, {"torch": 1.08},
                   noise=0.03)
    total = {}
    for p in results["points"]:
        total[(p["n"], p["m"])] = max(total.get((p["n"], p["m"]), 0), p["rounds"])
    assert max(total.values()) > 6
    assert clock.t <= budget + 0.5
    assert results["budget"]["sweep_s"] == pytest.approx(clock.t)


def test_budget_skips_points_that_cannot_fit_and_says_so():
    clock = FakeClock()
    config = _config(widths=[64, 256, 2048], batches=[512], time_budget=6.0)
    results = _run(config, clock, {"torch": 1.5})
    skipped = [s for s in results["skipped"] if s["n"] == 2048]
    assert skipped and all("time budget of 6 s" in s["reason"] for s in skipped)
    assert not [s for s in results["samples"] if s["n"] == 2048]
    assert clock.t <= 6.0 + 0.5


def test_report_reserve_comes_off_the_budget():
    clock = FakeClock()
    results = _run(_config(time_budget=20.0, report_reserve=5.0, max_rounds=200), clock,
                   {"torch": 1.05}, noise=0.05)
    assert results["budget"]["deadline_s"] == 15.0
    assert clock.t <= 15.5


def test_rounds_with_interference_are_set_aside_and_retaken():
    """Other processes take a full core during the first 0.1 s: those rounds are set aside;
    the sweep measures more rounds so that enough clean ones remain."""
    clock = FakeClock(others=lambda t: 1.0 if t < 0.1 else 0.0)
    results = _run(_config(widths=[64], batches=[512], time_budget=60.0), clock,
                   {"torch": 1.5})
    from deepnet.bench.summary import summarize

    (row,) = [r for r in summarize(results) if r["target"] == "torch"]
    assert row["rounds_set_aside"] > 0
    assert row["rounds"] >= 6 and row["vs_numpy"]["verdict"] == "faster"
    assert not row["flags"]


def test_persistent_interference_leaves_no_verdict():
    clock = FakeClock(others=lambda t: 1.0)
    results = _run(_config(time_budget=20.0), clock, {"torch": 1.5})
    from deepnet.bench.summary import summarize

    for row in summarize(results):
        v = row["vs_numpy"]
        assert v is None or v["verdict"] == "unreliable"
        assert any(f.startswith("interference") for f in row["flags"])


def test_rounds_group_cases_by_library_and_wait_only_at_a_change():
    clock = FakeClock()
    config = _config(widths=[64], batches=[64], reference=True, time_budget=None,
                     max_rounds=6)
    s = sweep.Sweep(config, clock=clock, build=fake_build(clock, {"torch": 1.5}),
                    machine={})
    results = s.run()
    first_round = [x for x in results["samples"] if x["round"] == 0]
    libs = [x["target"].replace("pytorch@cpu", "torch") for x in first_round]
    assert libs == sorted(libs, key=libs.index)  # each library's samples together
    assert {x["target"] for x in first_round} == {"numpy", "torch", "pytorch@cpu"}
    # 6 rounds, 2 libraries: at most 2 waits per round, each a few ms on the fake clock
    assert results["waits_s"] < 6 * 2 * 0.2


def test_max_width_caps_and_extra_points():
    clock = FakeClock()
    config = _config(widths=[4, 8], batches=[2], max_width={"torch": 4}, extra_points=((4, 3),),
                     time_budget=None, max_rounds=6)
    results = _run(config, clock, {"torch": 1.5})
    points = sorted({(s["target"], s["n"], s["m"]) for s in results["samples"]})
    assert ("torch", 8, 2) not in points and ("numpy", 8, 2) in points
    assert ("torch", 4, 3) in points
    assert [(s["target"], s["n"]) for s in results["skipped"]] == [("torch", 8)]


def test_free_device_memory_leaves_an_unusable_cupy_alone(monkeypatch):
    """CuPy imported but never run (no device): its pool is not touched."""
    calls = []
    pool = types.SimpleNamespace(free_all_blocks=lambda: calls.append("freed"))
    fake = types.SimpleNamespace(get_default_memory_pool=lambda: pool)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    sweep._free_device_memory(set())
    assert calls == []
    sweep._free_device_memory({"cupy"})
    assert calls == ["freed"]


def test_a_real_sweep_on_numpy_writes_as_it_goes(tmp_path):
    config = grid.Config(backends=["numpy"], widths=[4, 8], batches=[2], dtypes=["float64"],
                         repeat=3, max_rounds=3, reference=False, pause=0.0, min_time=1e-4,
                         criteria=Criteria())
    results = sweep.run_sweep(config, progress=False, out=tmp_path)
    got = sorted((s["n"], s["case"], s["round"]) for s in results["samples"])
    assert got == sorted((n, c, r) for n in (4, 8) for c in ("step", "floor") for r in range(3))
    for s in results["samples"]:
        assert s["seconds"] > 0 and s["cpu_s"] >= 0 and s["inner"] >= 1
        assert s["others_s"] is None or s["others_s"] >= 0
    saved = load_results(tmp_path)
    assert saved["samples"] == json.loads(json.dumps(results["samples"]))
    assert saved["config"]["criteria"]["band"] == 0.05


def test_call_times_are_extrapolated_without_scaling_a_fixed_cost():
    s = sweep.Sweep(_config(), clock=FakeClock(), build=lambda *a: {}, machine={})
    key = ("torch", "step")
    s.seen[key] = {1_000: 0.010}
    assert s._call_time(key, 8_000) == pytest.approx(0.080)  # one point: proportional
    s.seen[key] = {1_000: 0.010, 2_000: 0.011}  # 9 ms fixed + 1 µs per 1000 flops
    assert s._call_time(key, 8_000) == pytest.approx(0.017)
    assert s._call_time(key, 1_500) == pytest.approx(0.011)  # within: the larger point
    s.seen[key] = {1_000: 0.012, 2_000: 0.010}  # noise: never below the last measured
    assert s._call_time(key, 8_000) == pytest.approx(0.010)


def test_samples_shortened_by_a_slow_calibration_are_retaken():
    """Calls 20× slower while the point is calibrated: the first samples come out far
    shorter than --min-time; they are marked, the call counts corrected, and the rounds
    holding them set aside."""
    clock = FakeClock()
    config = _config(widths=[256], batches=[512], time_budget=None, max_rounds=12,
                     min_time=0.05)
    calls = []

    def slow(t):  # the 8 calls of calibration (2 for each of 4 cases)
        calls.append(t)
        return 20.0 if len(calls) <= 8 else 1.0

    build = fake_build(clock, {"torch": 1.5}, slow=slow)
    results = sweep.Sweep(config, clock=clock, build=build, machine={}).run()
    short = [s for s in results["samples"] if s["short"]]
    assert short and {s["round"] for s in short} == {0}
    assert all(s["inner"] > 1 for s in results["samples"] if s["round"] > 0)
    from deepnet.bench.summary import summarize

    (row,) = [r for r in summarize(results) if r["target"] == "torch"]
    assert row["rounds_set_aside"] == 1 and row["vs_numpy"]["verdict"] == "faster"


def test_a_case_that_fails_mid_sweep_is_skipped_and_the_sweep_goes_on():
    clock = FakeClock()
    build = fake_build(clock, {"torch": 1.5})

    def failing(config, results, n, m, dtype):
        cases = build(config, results, n, m, dtype)
        calls = []

        def oom():
            calls.append(1)
            if len(calls) > 3:  # calibration passes, a later sample fails
                raise MemoryError("out of device memory")
            clock.work(0.01)

        cases[("torch", "floor")] = Case("torch", "floor", oom, lambda: None)
        return cases

    config = _config(widths=[64], batches=[64], time_budget=None, max_rounds=6)
    results = sweep.Sweep(config, clock=clock, build=failing, machine={}).run()
    assert [(s["target"], s["case"]) for s in results["skipped"]] == [("torch", "floor")]
    assert "MemoryError: out of device memory" in results["skipped"][0]["reason"]
    steps = [s for s in results["samples"] if s["case"] == "step"]
    assert len(steps) == 2 * 6  # numpy and torch, every round


def test_rounds_needed_ignores_comparisons_too_close_to_the_band(monkeypatch):
    """torch at 1.16× [1.04, 1.30] needs a few more rounds; native PyTorch at 0.953, on the
    band's edge (1/1.05 = 0.952), could not settle within max_rounds: it must not hold
    torch up, and alone it asks for one more look, then nothing."""

    def verdict(estimate, lo, hi, sd):
        return {"estimate": estimate, "lo": lo, "hi": hi, "verdict": "undecided",
                "log_sd": sd, "rounds": 6, "why": "", "confidence": 0.97}

    torch = {"target": "torch", "flags": [], "rounds_clean": 6, "rounds_set_aside": 0,
             "vs_numpy": verdict(1.16, 1.04, 1.30, 0.1)}
    ref = {"target": "pytorch@cpu", "flags": [], "rounds_clean": 6, "rounds_set_aside": 0,
           "vs_numpy": verdict(0.953, 0.90, 1.01, 0.1)}
    rows = [torch, ref]
    monkeypatch.setattr(plan, "summarize", lambda *a: rows)
    s = sweep.Sweep(_config(max_rounds=40), clock=FakeClock(), build=lambda *a: {},
                    machine={})
    s.results["samples"] = [{"dtype": "float32", "n": 256, "m": 512}]
    s.rounds = {("float32", 256, 512): 6}
    need = s._rounds_needed(("float32", 256, 512))
    # (z · 1.2533 · 0.1 / (log 1.16 - log 1.05))² · 1.2 ≈ 14 rounds, z = 2.67: the
    # quantile of the next scheduled look's confidence (12 rounds: 1 - 0.01875 · 2/5)
    z = statistics.NormalDist().inv_cdf(1 - 0.01875 * 2 / 5 / 2)
    assert need == pytest.approx(1.2 * (z * 1.2533 * 0.1 / math.log(1.16 / 1.05)) ** 2)
    rows = [ref]  # alone: one more look (the second scheduled one, 12), then nothing
    assert s._rounds_needed(("float32", 256, 512)) == 12.0
    s.rounds = {("float32", 256, 512): 12}
    ref["rounds_clean"] = 12
    assert s._rounds_needed(("float32", 256, 512)) is None


def test_a_round_far_slower_than_predicted_stops_at_the_deadline():
    """Calls turn 30× slower near the end (a burst of load): the round in progress stops
    at the deadline instead of running on; at most one sample ends past it."""
    clock = FakeClock()
    config = _config(widths=[256], batches=[512], time_budget=10.0, repeat=400,
                     max_rounds=400, min_time=0.05)  # rounds until the budget ends
    build = fake_build(clock, {"torch": 1.5}, slow=lambda t: 30.0 if t > 9.5 else 1.0)
    results = sweep.Sweep(config, clock=clock, build=build, machine={}).run()
    late = [s for s in results["samples"] if s["t"] > 10.0]
    assert len(late) <= 1
    assert clock.t <= 10.0 + 30 * 0.05 * 1.3  # one slowed sample at most


@pytest.mark.parametrize("true", [1.0, 0.98, 1.02])
def test_more_rounds_never_turn_a_ratio_inside_the_band_into_faster_or_slower(true):
    """Adaptive rounds are repeated looks at the same comparison, which inflates the error
    rate of a test; the band keeps it away from ratios inside it: over 40 simulated sweeps
    (3 % noise per sample) no look ends in "faster" or "slower"."""
    from deepnet.bench.summary import summarize

    for seed in range(40):
        clock = FakeClock()
        config = _config(widths=[256], batches=[512], time_budget=60.0, min_time=0.01)
        build = fake_build(clock, {"torch": true}, noise=0.03, seed=seed)
        results = sweep.Sweep(config, clock=clock, build=build, machine={}).run()
        (row,) = [r for r in summarize(results) if r["target"] == "torch"]
        assert row["vs_numpy"]["verdict"] not in ("faster", "slower"), (seed, row["vs_numpy"])


def test_repeated_looks_keep_wrong_verdicts_on_the_band_edge_within_the_confidence():
    """torch exactly 1.05× NumPy: on the band's edge, so "faster" is wrong. Looking after
    every added round and stopping when the verdict settles, each look at the nominal
    95 %, 5.2 % of 2,000 simulated sweeps ended in "faster" (one side of a 95 % interval
    allows 2.5 %). With the error split in advance over the scheduled looks (6, 12, 24,
    40 rounds), none of the sides may exceed 2.5 %: here, at most 10 of 400 sweeps (seeds
    fixed; 5 with the schedule, 4 with a Bonferroni share for every round)."""
    from deepnet.bench.summary import summarize

    wrong = 0
    for seed in range(400):
        clock = FakeClock()
        config = _config(widths=[256], batches=[512], time_budget=None, min_time=0.01)
        build = fake_build(clock, {"torch": 1.05}, noise=0.03, seed=seed)
        results = sweep.Sweep(config, clock=clock, build=build, machine={}).run()
        (row,) = [r for r in summarize(results) if r["target"] == "torch"]
        wrong += row["vs_numpy"]["verdict"] == "faster"
    assert wrong <= 10, wrong


def test_the_sweep_decides_only_at_the_scheduled_looks(monkeypatch):
    """Stop/continue (``visit``) and which points to extend (``_refine``) look at the data
    only when a point's usable rounds reach 6, 12, 24 or 40; between them it measures on.
    Rounds set aside for interference (every third round here) are not counted."""
    from deepnet.bench.verdicts import look_schedule

    assert look_schedule(6, 40) == (6, 12, 24, 40)
    assert look_schedule(5, 12) == (5, 10, 12)
    assert look_schedule(6, 6) == (6,)
    seen = []
    needed = sweep.Sweep._rounds_needed

    def spy(self, job):
        seen.append(self._usable(job))
        return needed(self, job)

    monkeypatch.setattr(sweep.Sweep, "_rounds_needed", spy)
    for others in (lambda t: 0.0, lambda t: 2.0 if int(t * 7) % 3 == 0 else 0.0):
        seen.clear()
        clock = FakeClock(others=others)
        config = _config(time_budget=120.0, max_rounds=40)
        results = sweep.Sweep(config, clock=clock, build=fake_build(clock, {"torch": 1.06},
                                                                     noise=0.04),
                              machine={"cores_usable": 2}).run()
        assert seen and set(seen) <= {6, 12, 24, 40}, seen
        assert max(p["rounds"] for p in results["points"]) > 6


def test_long_shots_get_their_later_looks_with_the_time_left():
    """torch 1.04× NumPy with 4 % noise: by the sweep's estimate its interval cannot leave
    the band's edge within 40 rounds, so after the second look (12 rounds) it is a long
    shot. With time no likelier point needs it still gets its later looks (24, 40 usable
    rounds), each at the level fixed for it in advance, instead of leaving the budget
    unused (before, 3 seeds of 3 stopped at 12); a short budget still holds."""
    from deepnet.bench.verdicts import look_schedule

    for seed in range(3):
        for budget in (300.0, 20.0):
            clock = FakeClock()
            config = _config(widths=[256], batches=[512], time_budget=budget, max_rounds=40)
            results = _run(config, clock, {"torch": 1.04}, noise=0.04, seed=seed)
            rounds = max(p["rounds"] for p in results["points"])
            assert clock.t <= budget + 0.5
            if budget == 300.0:
                assert rounds == 40, (seed, results["points"])
            else:
                assert rounds in look_schedule(6, 40) or clock.t > budget - 2.0, rounds


def test_a_capped_backend_is_reported_skipped_once_however_often_its_point_is_revisited():
    """The sweep rebuilds a point's cases at every visit; the width cap's skip must not
    be recorded again each time (the shipped results once listed array-api-strict at
    n = 1024 four times per point)."""
    clock = FakeClock()
    config = _config(widths=[256], batches=[512], max_width={"torch": 128},
                     backends=["numpy", "torch", "array_api_strict"], time_budget=300.0)
    results = _run(config, clock, {"array_api_strict": 1.04}, noise=0.04)
    assert sum(1 for p in results["points"]) > 1  # revisited
    assert [(s["target"], s["n"]) for s in results["skipped"]] == [("torch", 256)]


def test_a_point_without_cases_does_not_end_pass_2_for_the_others():
    """Every target over its width cap at n = 256: its visits measure nothing (on a clock
    that only moves with work), which must set that point aside, not stop the sweep; the
    other point, open at 1.04×, still gets its later looks."""
    clock = FakeClock()
    config = _config(widths=[64, 256], batches=[512], time_budget=300.0, max_rounds=40,
                     max_width={"numpy": 128, "torch": 128})
    results = _run(config, clock, {"torch": 1.04}, noise=0.04)
    rounds = {}
    for p in results["points"]:
        rounds[p["n"]] = max(rounds.get(p["n"], 0), p["rounds"])
    assert rounds == {64: 40, 256: 0}


def test_a_case_skipped_at_a_visit_is_never_measured_again():
    """torch's floor takes 0.5 s a call, over --max-sample-seconds 0.2: skipped at the first
    visit, and neither warmed up nor sampled at the later ones."""
    clock = FakeClock()
    base = fake_build(clock, {"torch": 1.04}, noise=0.04)
    calls = []

    def slow():
        calls.append(clock.t)
        clock.work(0.5)

    def build(config, results, n, m, dtype):
        cases = base(config, results, n, m, dtype)
        cases[("torch", "floor")] = Case("torch", "floor", slow, lambda: None)
        return cases

    config = _config(widths=[256], batches=[512], time_budget=30.0, max_rounds=40,
                     max_sample_seconds=0.2)
    results = sweep.Sweep(config, clock=clock, build=build, machine={}).run()
    assert len(results["points"]) > 1  # revisited
    assert [(s["target"], s["case"]) for s in results["skipped"]] == [("torch", "floor")]
    assert not [s for s in results["samples"] if (s["target"], s["case"]) == ("torch", "floor")]
    assert len(calls) == 2  # the calibration's two calls, nothing at the later visits


def test_a_skip_is_recorded_once_even_when_its_message_changes():
    from deepnet.bench.report import render_markdown
    from deepnet.bench.summary import summarize

    clock = FakeClock()
    base = fake_build(clock, {"torch": 1.04}, noise=0.04)
    count = iter(range(100))

    def out_of_memory():
        clock.work(0.001)
        raise RuntimeError(f"out of memory: {next(count)} MiB free")

    def build(config, results, n, m, dtype):
        cases = base(config, results, n, m, dtype)
        cases[("torch", "floor")] = Case("torch", "floor", out_of_memory, lambda: None)
        return cases

    config = _config(widths=[256], batches=[512], time_budget=300.0, max_rounds=40)
    results = sweep.Sweep(config, clock=clock, build=build, machine={}).run()
    assert len(results["points"]) > 1
    assert len(results["skipped"]) == 1 and "0 MiB free" in results["skipped"][0]["reason"]
    doubled = dict(results, skipped=results["skipped"] * 3)  # as files written before
    md = render_markdown(doubled, summarize(doubled))
    assert sum("out of memory" in line for line in md.splitlines()) == 1


@pytest.mark.parametrize("sizes", [(1, 1), (2, 1), (1, 3), (2, 3), (4, 3), (1,), (3,)])
def test_no_case_is_timed_right_after_itself(sizes):
    """A case that follows itself finds its data in the caches: at (1024, 64) NumPy's step
    measured 9.4 ms after itself and 10.1 ms after another case, and with the plain
    rotation the first case of every round followed itself (the last of the round
    before), which split the per-round ratios into two modes. Over many rounds and
    library groups of every size, no round starts with the case that ran last; the
    cases stay grouped by library, and more than one case starts a round."""
    cases = {}
    for g, size in enumerate(sizes):
        target = ["numpy", "torch", "cupy"][g]
        for kind in ["step", "floor", "forward", "backward"][:size]:
            cases[(target, kind)] = None
    previous = next(reversed(cases))
    firsts = set()
    for r in range(24):
        order = sweep.Sweep._order(cases, r, previous)
        assert sorted(order) == sorted(cases)
        if len(cases) > 1:
            assert order[0] != previous, (r, order)
        libs = [k[0] for k in order]
        assert libs == sorted(libs, key=libs.index)  # each library's cases together
        firsts.add(order[0])
        previous = order[-1]
    if max(sizes) > 1:  # two lone cases can only alternate: A B, A B, ... (each after the other)
        assert len(firsts) >= 2


def test_the_order_effect_leaves_no_two_modes_in_a_simulated_sweep():
    """Cases that run 8 % faster right after themselves (the cache effect measured at
    n = 1024, m = 64): with every round starting on a different case than the last one
    ended with, the speedup's rounds do not alternate between two levels."""
    clock = FakeClock()
    last = [None]

    def build(config, results, n, m, dtype):
        cases = {}
        for target, base in (("numpy", 0.01), ("torch", 0.0095)):
            def call(target=target, base=base):
                clock.work(base * (0.92 if last[0] == target else 1.0))
                last[0] = target
            cases[(target, "step")] = Case(target, "step", call, lambda: None)
        return cases

    config = _config(widths=[1024], batches=[64], time_budget=None, repeat=20, max_rounds=20,
                     cases=("step",), min_time=0.005)
    results = sweep.Sweep(config, clock=clock, build=build, machine={}).run()
    times = {}
    for s in results["samples"]:
        times.setdefault(s["target"], {})[s["round"]] = s["seconds"]
    ratios = [times["numpy"][r] / times["torch"][r] for r in sorted(times["numpy"])]
    assert max(ratios) / min(ratios) < 1.02, ratios
