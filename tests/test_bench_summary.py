"""``deepnet.bench.summary`` and ``deepnet.bench.crossover``: rows from raw samples (medians
of per-round ratios, rounds set aside, flags, verdicts) and crossovers from verdicts."""

from __future__ import annotations

import pytest
from bench_synthetic import POINTS, rows_by, synthetic, true_numpy_seconds

from deepnet.bench import layer_dims, step_flops
from deepnet.bench.crossover import Crossover, crossover, crossover_map, crossover_sentence
from deepnet.bench.summary import grid_share, point_table, summarize
from deepnet.bench.verdicts import Criteria


def _hand_made():
    """3 rounds by hand at one point: per-round ratios differ from ratios of medians."""
    samples = []

    def add(target, case, values):
        for r, v in enumerate(values):
            samples.append({"target": target, "case": case, "n": 64, "m": 64,
                            "dtype": "float32", "round": r, "seconds": v, "cpu_s": 1.5 * v,
                            "others_s": 0.0, "inner": 1})

    add("numpy", "step", [1.0, 3.0, 4.0])
    add("numpy", "floor", [2.0, 1.0, 2.0])  # per-round ratios .5, 3, 2 → 2
    add("torch", "step", [2.0, 6.0, 8.0])
    add("pytorch@cpu", "step", [2.0, 3.0, 2.0])
    return {"targets": {"numpy": {"role": "deepnet", "gpu": False, "reference": "pytorch@cpu"},
                        "torch": {"role": "deepnet", "gpu": False, "reference": "pytorch@cpu"},
                        "pytorch@cpu": {"role": "reference", "gpu": False, "reference": None}},
            "samples": samples, "config": {}, "machine": {}}


def test_rows_use_medians_of_per_round_ratios():
    rows = summarize(_hand_made(), Criteria(max_spread=10.0))
    row = rows_by(rows, "numpy", 64, 64)
    assert row["median_s"] == 3.0 and row["rounds"] == 3 and row["rounds_set_aside"] == 0
    assert row["vs_floor"]["estimate"] == pytest.approx(2.0)  # ratio of medians: 1.5
    assert row["vs_floor"]["lo"] is None  # 3 rounds: no 95 % interval
    assert row["vs_reference"]["estimate"] == pytest.approx(1.0)  # median(.5, 1, 2)
    assert row["vs_numpy"] is None
    assert row["gflops"] == pytest.approx(step_flops(layer_dims(64), 64) / 3e9)
    assert (row["q1_s"], row["q3_s"]) == (2.0, 3.5)
    assert row["iqr_rel"] == pytest.approx(0.5)
    assert row["cpu_per_wall"] == pytest.approx(1.5)
    torch = rows_by(rows, "torch", 64, 64)
    assert torch["vs_numpy"]["estimate"] == pytest.approx(0.5)
    assert torch["vs_numpy"]["verdict"] == "undecided"
    assert "3 usable round(s)" in torch["vs_numpy"]["why"]
    assert torch["vs_floor"] is None
    ref = rows_by(rows, "pytorch@cpu", 64, 64)
    assert ref["role"] == "reference" and ref["vs_reference"] is None


def test_synthetic_grid_recovers_the_true_ratios():
    rows = summarize(synthetic({"torch": 1.3, "pytorch@cpu": 0.8, "cupy": 10.0}))
    for n, m in POINTS:
        numpy = rows_by(rows, "numpy", n, m)
        assert numpy["median_s"] == pytest.approx(true_numpy_seconds(n, m), rel=0.02)
        assert numpy["vs_floor"]["estimate"] == pytest.approx(1.3, rel=0.02)
        assert numpy["vs_floor"]["lo"] < numpy["vs_floor"]["hi"]
        torch = rows_by(rows, "torch", n, m)
        assert torch["vs_numpy"]["estimate"] == pytest.approx(1.3, rel=0.02)
        assert torch["vs_numpy"]["verdict"] == "faster"
        assert torch["vs_reference"]["estimate"] == pytest.approx(0.8 / 1.3, rel=0.02)
        cupy = rows_by(rows, "cupy", n, m)
        assert cupy["vs_cpu"]["estimate"] == pytest.approx(10 / 1.3, rel=0.02)  # vs torch
        assert cupy["vs_cpu"]["verdict"] == "faster"
        assert cupy["vs_reference"] is None  # no pytorch@cuda:0 samples in this run
    share = grid_share(rows)
    assert share["total"] == 3 * len(POINTS) and share["clear"] == share["total"]


def test_interfered_rounds_are_set_aside():
    results = synthetic({"torch": 1.3}, rounds=12,
                        others_cores=lambda t, c, n, m, r: 1.0 if r < 3 else 0.0)
    row = rows_by(summarize(results), "torch", 64, 64)
    assert (row["rounds"], row["rounds_total"], row["rounds_set_aside"]) == (9, 12, 3)
    assert not row["flags"] and row["vs_numpy"]["verdict"] == "faster"
    worse = synthetic({"torch": 1.3}, rounds=8,
                      others_cores=lambda t, c, n, m, r: 1.0 if r < 4 else 0.0)
    row = rows_by(summarize(worse), "torch", 64, 64)
    assert row["rounds"] == 8 and row["rounds_set_aside"] == 0  # too few clean: shown
    assert row["flags"][0].startswith("interference")
    assert row["vs_numpy"]["verdict"] == "unreliable"


def test_rounds_past_the_deadline_are_set_aside_and_flagged():
    results = synthetic({"torch": 1.3}, rounds=8)
    for s in results["samples"]:
        s["t"] = float(s["round"])
    results["budget"]["deadline_s"] = 6.5
    row = rows_by(summarize(results), "torch", 64, 64)
    assert row["rounds_set_aside"] == 1
    assert any(f.startswith("budget overrun") for f in row["flags"])


def test_the_loadavg_stands_in_where_cpu_accounting_is_missing():
    results = synthetic({"torch": 1.3})
    for s in results["samples"]:
        s["others_s"] = None
    results["points"] = [{"dtype": "float32", "n": n, "m": m, "loadavg_end": [3.4, 2, 1]}
                         for n, m in POINTS]
    row = rows_by(summarize(results), "torch", 64, 64)
    assert "load average 3.40 on 2 cores" in row["flags"][0]


def test_point_table_gives_the_usable_rounds():
    rows, table = point_table(synthetic({"torch": 1.3}), "float32", 64, 512)
    assert set(rows) == {"numpy", "torch"} and len(table[("torch", "step")]) == 8


@pytest.mark.parametrize("labels, expected", [
    ([(64, "slower"), (256, "faster"), (1024, "faster")], Crossover("from", 256)),
    # faster at 64 too: "from 1024" would say it is not (it was, before this was fixed)
    ([(64, "faster"), (256, "same"), (1024, "faster")], Crossover("mixed", faster=(64, 1024))),
    ([(64, "faster"), (256, "faster")], Crossover("all", 64)),
    # faster at 64: not "never" (it was, before this was fixed)
    ([(64, "faster"), (256, "slower")], Crossover("mixed", faster=(64,))),
    ([(64, "faster"), (256, "undecided")], Crossover("mixed", faster=(64,))),
    ([(64, "unreliable"), (256, "faster")], Crossover("from_at_most", 256, 64)),
    ([(64, "same")], Crossover("never")),
])
def test_crossover_along_widths(labels, expected):
    assert crossover(labels) == expected


def test_crossover_sentences():
    assert crossover_sentence("cupy", {512: Crossover("from", 256), 4096: Crossover("all", 64)}
                              ) == ("CuPy is faster than NumPy from n = 256 at m = 512, at "
                                    "every width measured (from n = 64) at m = 4096.")
    assert crossover_sentence("torch", {64: Crossover("never"),
                                        512: Crossover("from_at_most", 1024, 256)}) == (
        "torch is faster than NumPy from n = 1024 or earlier at m = 512 (no verdict at "
        "n = 256); never in this grid at m = 64.")
    assert crossover_sentence("array_api_strict", {64: Crossover("never"),
                                                   512: Crossover("never")}) == (
        "array-api-strict is never faster than NumPy in this grid.")
    assert crossover_sentence("torch", {64: Crossover("never"),
                                        512: Crossover("unclear", unclear=1024)}) == (
        "torch is never faster than NumPy at m = 64 in this grid; no clear verdict at the "
        "largest width at m = 512 (n = 1024).")


def test_crossover_map_from_synthetic_verdicts():
    rows = summarize(synthetic({"torch": lambda n, m: 1.5 if n >= 256 else 0.7,
                                "cupy": lambda n, m: 10.0 if n >= 1024 else 0.5}))
    sentences = crossover_map(rows)["float32"]
    assert "torch is faster than NumPy from n = 256 at m = 64, from n = 256 at m = 512." \
        in sentences
    assert ("CuPy is faster than the fastest CPU backend from n = 1024 at m = 64, "
            "from n = 1024 at m = 512.") in sentences


def test_a_crossover_never_hides_a_faster_width_or_a_hole_in_the_grid():
    """Faster at 256 but slower at 1024 is not "never faster"; a width this backend lacks
    (cut by the budget, Ctrl-C, a cap) cannot bound a crossover."""
    from deepnet.bench.crossover import crossover, crossover_sentence, crossovers

    c = crossover([(64, "slower"), (256, "faster"), (1024, "slower")])
    assert c.state == "mixed" and c.faster == (256,)
    text = crossover_sentence("torch", {512: c})
    assert "never" not in text and "n = 256" in text and "no crossover" in text
    c = crossover([(64, "faster"), (256, "slower"), (1024, "faster")])
    assert c.state == "mixed" and c.faster == (64, 1024)

    def row(target, n, verdict):
        return {"dtype": "float32", "target": target, "n": n, "m": 512,
                "vs_numpy": None if target == "numpy" else {"verdict": verdict}}

    rows = [row("numpy", n, None) for n in (64, 256, 1024)]
    rows += [row("torch", 64, "slower"), row("torch", 1024, "faster")]  # 256 cut
    (per_m,) = crossovers(rows).values()
    assert per_m[512].state == "from_at_most" and per_m[512].unclear == 256
    assert "or earlier" in crossover_sentence("torch", per_m)


def test_rounds_set_aside_do_not_count_as_later_looks():
    """A point that took 8 rounds because 2 were set aside (interference) had its first
    look at 6 usable rounds (the sweep's looks count usable rounds): judged at the nominal
    confidence. 8 usable rounds lie past the first look: judged at the level of the next
    scheduled one (12 rounds, 99.25 %: too strict for 8 rounds, no verdict)."""
    def run(aside):
        results = synthetic({"torch": 1.3}, rounds=8,
                            others_cores=lambda t, c, n, m, r: 1.0 if r < aside else 0.0)
        results["config"] = {**(results.get("config") or {}), "repeat": 6, "max_rounds": 40}
        return rows_by(summarize(results), "torch", 64, 64)

    row = run(aside=2)
    assert (row["rounds"], row["rounds_set_aside"]) == (6, 2)
    assert row["vs_numpy"]["verdict"] == "faster"
    row = run(aside=0)
    assert row["rounds"] == 8 and row["vs_numpy"]["verdict"] == "undecided"
