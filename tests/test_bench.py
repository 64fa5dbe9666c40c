"""The sweep engine ``deepnet.bench``: flops, per-round ratios, crossovers, files, advice.

Pure parts run on synthetic timings; the cases run once on every backend; one tiny sweep
runs end to end in a subprocess, writing into ``tmp_path``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import deepnet as dn
from deepnet import bench

# -- shapes, flops, names -----------------------------------------------------------------


def test_layer_dims_are_four_hidden_layers_and_one_output():
    assert bench.layer_dims(64) == [64, 64, 64, 64, 64, 1]


@pytest.mark.parametrize("n, m", [(64, 64), (256, 512), (1024, 4096)])
def test_step_flops_is_six_sum_n_l_n_lm1_m(n, m):
    assert bench.step_flops(bench.layer_dims(n), m) == 6 * (4 * n * n + n) * m
    assert bench.step_flops([3, 5, 2], 7) == 6 * (5 * 3 + 2 * 5) * 7


def test_floor_is_fourteen_matmuls_without_dA0():
    dims, m = bench.layer_dims(8), 3
    ops = bench.floor_matmuls(dims, m)
    assert len(ops) == 14
    flops = sum(2 * rows * inner * cols for _, rows, inner, cols in ops)
    # forward, dW and dA each cost 2·n[l]·n[l-1]·m, except the dA0 that is not needed
    assert flops == bench.step_flops(dims, m) - 2 * dims[1] * dims[0] * m
    assert not any(what.startswith("dA0") for what, *_ in ops)


def test_target_names():
    assert bench.parse_target("torch:cuda:1") == ("torch", "cuda:1")
    assert bench.parse_target("numpy") == ("numpy", None)
    assert [bench.is_gpu(t) for t in ("numpy", "torch", "torch:cuda", "cupy", "pytorch@cpu",
                                      "pytorch@cuda:0")] == [False, False, True, True, False,
                                                             True]
    assert bench.reference_target("numpy") == "pytorch@cpu"
    assert bench.reference_target("array_api_strict:device1") == "pytorch@cpu"
    assert bench.reference_target("torch:cuda") == "pytorch@cuda:0"
    assert bench.reference_target("torch:cuda:1") == "pytorch@cuda:1"
    assert bench.reference_target("cupy:1") == "pytorch@cuda:1"


def test_large_points():
    assert bench.is_large("numpy", 4096, 64) and not bench.is_large("numpy", 1024, 4096)
    assert bench.is_large("array_api_strict", 1024, 64)
    assert not bench.is_large("array_api_strict", 256, 4096)
    assert not bench.is_large("cupy", 8192, 8192)


# -- the cases, once on every backend ------------------------------------------------------


def test_cases_run_and_the_step_trains(backend):
    target = backend.label
    cases = bench.deepnet_cases(target, 6, 32, "float64", seed=3)
    assert sorted(cases) == sorted(bench.DEEPNET_CASES)
    AL = dn.to_numpy(cases["forward"]())
    assert AL.shape == (1, 32) and np.all((AL > 0) & (AL < 1))
    grads = cases["backward"]()
    assert dn.to_numpy(grads["dW1"]).shape == (6, 6)
    costs = [float(dn.to_numpy(cases["step"]())) for _ in range(300)]
    assert all(math.isfinite(c) for c in costs)
    assert costs[-1] < costs[0], (costs[0], costs[-1])
    out = cases["floor"]()
    assert backend.owns(out) and dn.to_numpy(out).shape == (6, 32)


def test_floor_writes_every_product(backend):
    """With ``out=`` the floor's outputs must hold the products, not stale buffers."""
    case = bench.floor_case(backend, backend.label, 5, 7, "float64", seed=1)
    first = dn.to_numpy(case())
    assert np.all(np.isfinite(first)) and np.any(first != 0)
    np.testing.assert_allclose(dn.to_numpy(case()), first)


def test_reference_step_trains():
    pytest.importorskip("torch")
    case = bench.reference_case("cpu", 6, 32, "float64", seed=0)
    losses = [float(case().detach()) for _ in range(300)]
    assert losses[-1] < losses[0]


def test_calibrate_and_sample_count_calls():
    calls = []
    case = bench.Case("numpy", "step", lambda: calls.append(1), lambda: None)
    inner, first = bench.calibrate(case, min_time=0.0)
    assert inner == 1 and first >= 0 and len(calls) == 2  # the first call, then a timed one
    calls.clear()
    slow = bench.Case("numpy", "step", lambda: (calls.append(1), time.sleep(0.002)),
                      lambda: None)
    inner, _ = bench.calibrate(slow, min_time=0.02)
    assert 2 <= inner <= 10, inner  # ~0.02 s / 0.002 s per call (sleep may overshoot)
    calls.clear()
    seconds, cpu = bench.sample(case, 7, pause=0.0)
    assert len(calls) == 7 and seconds >= 0 and cpu >= 0


# -- summaries on synthetic timings -----------------------------------------------------


def _synthetic(points=((64, 64), (256, 64), (64, 512), (256, 512))) -> dict:
    """numpy, torch, cupy and their references, with per-round times chosen by hand.

    torch: 2× faster than numpy at n = 256, 2× slower at n = 64; cupy: 2× slower than
    numpy at n = 64, 10× faster than numpy and 5× faster than torch at n = 256.
    """
    targets = {
        "numpy": {"role": "deepnet", "gpu": False, "reference": "pytorch@cpu"},
        "torch": {"role": "deepnet", "gpu": False, "reference": "pytorch@cpu"},
        "cupy": {"role": "deepnet", "gpu": True, "reference": "pytorch@cuda:0"},
        "pytorch@cpu": {"role": "reference", "gpu": False, "reference": None},
        "pytorch@cuda:0": {"role": "reference", "gpu": True, "reference": None},
    }
    samples = []

    def add(target, case, n, m, values):
        for r, v in enumerate(values):
            samples.append({"target": target, "case": case, "n": n, "m": m,
                            "dtype": "float32", "round": r, "seconds": v, "inner": 1})
            if (target, case) == ("numpy", "step"):
                samples[-1]["cpu_s"] = 1.5 * v

    for n, m in points:
        big = n == 256
        add("numpy", "step", n, m, [1.0, 3.0, 4.0])
        add("numpy", "floor", n, m, [2.0, 1.0, 2.0])  # per-round ratios .5, 3, 2 → 2
        add("torch", "step", n, m, [0.5, 1.5, 2.0] if big else [2.0, 6.0, 8.0])
        add("torch", "floor", n, m, [0.25, 0.75, 1.0])
        add("cupy", "step", n, m, [0.1, 0.3, 0.4] if big else [2.0, 6.0, 8.0])
        add("cupy", "floor", n, m, [0.1, 0.3, 0.4])
        add("pytorch@cpu", "step", n, m, [2.0, 3.0, 2.0])
        add("pytorch@cuda:0", "step", n, m, [0.2, 0.3, 0.4])
    return {"schema": bench.SCHEMA, "created": "2026-01-01T00:00:00+00:00",
            "command": ["deepnet", "bench"], "config": {"repeat": 3, "pause_s": 0.2},
            "targets": targets, "machine": {"hostname": "h", "cpu": "c", "cores_usable": 2},
            "samples": samples, "skipped": [{"target": "numpy", "case": None, "n": 4096,
                                             "m": 64, "dtype": "float32", "reason": "test"}]}


def _row(rows, target, n, m):
    (row,) = [r for r in rows if (r["target"], r["n"], r["m"]) == (target, n, m)]
    return row


def test_summary_uses_medians_of_per_round_ratios():
    rows = bench.summarize(_synthetic())
    row = _row(rows, "numpy", 64, 64)
    assert row["median_s"] == 3.0 and row["rounds"] == 3
    assert row["vs_floor"] == pytest.approx(2.0)  # median(.5, 3, 2); ratio of medians is 1.5
    assert row["vs_reference"] == pytest.approx(1.0)  # median(.5, 1, 2)
    assert row["vs_numpy"] is None
    assert row["gflops"] == pytest.approx(bench.step_flops(bench.layer_dims(64), 64) / 3e9)
    assert row["q1_s"] == 2.0 and row["q3_s"] == 3.5
    assert row["iqr_rel"] == pytest.approx(0.5)
    assert _row(rows, "torch", 256, 64)["vs_numpy"] == pytest.approx(2.0)
    assert _row(rows, "torch", 64, 64)["vs_numpy"] == pytest.approx(0.5)
    cupy = _row(rows, "cupy", 256, 512)
    assert cupy["vs_numpy"] == pytest.approx(10.0)
    assert cupy["vs_cpu"] == pytest.approx(5.0)  # against torch, the faster CPU backend
    assert cupy["vs_reference"] == pytest.approx(1.0)
    assert row["cpu_per_wall"] == pytest.approx(1.5)  # numpy steps carry cpu_s = 1.5·seconds
    assert _row(rows, "torch", 64, 64)["cpu_per_wall"] is None
    ref = _row(rows, "pytorch@cpu", 64, 64)
    assert ref["role"] == "reference" and ref["vs_reference"] is None
    assert ref["vs_numpy"] == pytest.approx(1.0)  # median(.5, 1, 2)


@pytest.mark.parametrize("speedups, width", [
    ([(64, 0.5), (256, 1.2), (1024, 2.0)], 256),
    ([(1024, 1.5), (64, 2.0), (256, 0.9)], 1024),  # must stay faster from there on
    ([(64, 2.0), (256, 3.0)], 64),
    ([(64, 2.0), (256, 0.5)], None),
    ([(64, 1.0)], None),  # a tie is not faster
])
def test_crossover_width(speedups, width):
    assert bench.crossover_width(speedups) == width


def test_crossover_sentences():
    assert bench.crossover_sentence("cupy", {512: 256, 4096: 64}) == (
        "CuPy is faster than NumPy from n = 256 at m = 512, from n = 64 at m = 4096.")
    assert bench.crossover_sentence("torch", {64: None, 512: 1024}) == (
        "torch is faster than NumPy from n = 1024 at m = 512; never in this grid at m = 64.")
    assert bench.crossover_sentence("array_api_strict", {64: None, 512: None}) == (
        "array-api-strict is never faster than NumPy in this grid.")
    assert bench.crossover_sentence("torch", {64: None}) == (
        "torch is never faster than NumPy at m = 64 in this grid.")


def test_crossover_map_on_synthetic_timings():
    sentences = bench.crossover_map(bench.summarize(_synthetic()))["float32"]
    assert "torch is faster than NumPy from n = 256 at m = 64, from n = 256 at m = 512." \
        in sentences
    assert "CuPy is faster than NumPy from n = 256 at m = 64, from n = 256 at m = 512." \
        in sentences
    assert ("CuPy is faster than the fastest CPU backend from n = 256 at m = 64, "
            "from n = 256 at m = 512.") in sentences


def test_markdown_report():
    text = bench.render_markdown(_synthetic())
    assert "## float32" in text and "### Crossover map" in text
    assert "| backend | n | m | time/step (median) |" in text
    assert "| NumPy | 64 | 64 | 3.00 s | 50.0% |" in text and "| 1.50 |" in text
    assert "| torch | 256 | 64 | 1.50 s |" in text and "| 2.00× |" in text
    assert "## Skipped" in text and "n = 4096, m = 64 (float32): test" in text


# -- files and the command line ---------------------------------------------------------


def test_results_round_trip_and_schema(tmp_path):
    results = _synthetic()
    path = bench.write_json(results, tmp_path)
    assert path == tmp_path / "results.json"
    assert bench.load_results(tmp_path) == json.loads(json.dumps(results))
    bad = dict(results, schema="other")
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="not a deepnet bench results file"):
        bench.load_results(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="run `deepnet bench"):
        bench.load_results(tmp_path / "missing")


def test_advise_from_saved_results(tmp_path, capsys):
    bench.write_json(_synthetic(), tmp_path)
    assert bench.main(["--advise", "256", "512", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "At n = 256, m = 512 (float32) the fastest backend is CuPy: 300 ms per step" in text
    assert "torch: 1.50 s (5.00× slower); ÷ native PyTorch (cpu) = 0.50" in text
    assert "CuPy: 300 ms; ÷ native PyTorch (cuda:0) = 1.00" in text
    assert "native PyTorch (cpu): 2.00 s" in text
    assert "CuPy is 10.00× faster than NumPy here" in text
    assert "Crossover: torch is faster than NumPy from n = 256 at m = 512." in text
    assert bench.main(["--advise", "300", "600", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "(n = 300, m = 600) was not measured; the nearest measured point is n = 256, " \
           "m = 512" in text


def test_advise_without_results_says_what_to_run(tmp_path, capsys):
    assert bench.main(["--advise", "64", "64", "--out", str(tmp_path / "none")]) == 1
    assert "no saved results" in capsys.readouterr().err


def test_render_writes_table_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    bench.write_json(_synthetic(), tmp_path)
    assert bench.main(["--render", "--out", str(tmp_path)]) == 0
    assert "## float32" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args", [
    ["--backends", "nope"], ["--widths", "a,b"], ["--widths", "0"], ["--dtype", "float16"],
    ["--repeat", "0"], ["--cases", "sideways"], ["--points", "8x"], ["--max-width", "numpy"],
])
def test_bad_arguments_are_refused(args, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main([*args, "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "deepnet bench" in capsys.readouterr().err


def test_sweep_in_process_caps_budget_and_rounds(tmp_path):
    config = bench.Config(backends=["numpy"], widths=[4, 8], batches=[2], dtypes=["float64"],
                          repeat=3, reference=False, pause=0.0, min_time=1e-4,
                          max_width={"numpy": 4}, extra_points=((4, 3),))
    results = bench.run_sweep(config, progress=False, out=tmp_path)
    got = sorted((s["n"], s["m"], s["case"], s["round"]) for s in results["samples"])
    assert got == sorted((4, m, c, r) for m in (2, 3) for c in ("step", "floor")
                         for r in range(3))
    assert [(s["target"], s["n"]) for s in results["skipped"]] == [("numpy", 8)]
    assert bench.load_results(tmp_path)["samples"] == json.loads(json.dumps(results["samples"]))
    spent = bench.run_sweep(bench.Config(backends=["numpy"], widths=[4], batches=[2],
                                         dtypes=["float32"], reference=False, time_budget=-1.0),
                            progress=False)
    assert spent["samples"] == [] and "time budget" in spent["skipped"][0]["reason"]


def test_tiny_sweep_end_to_end(tmp_path):
    """``python -m deepnet.bench`` on a tiny grid: JSON, markdown, PNG and the printout."""
    backends = ["numpy", "array_api_strict"]
    try:
        import torch  # noqa: F401

        backends.append("torch")
    except ImportError:
        pass
    out = tmp_path / "res"
    cmd = [sys.executable, "-m", "deepnet.bench", "--backends", ",".join(backends),
           "--widths", "8,16", "--batches", "4,8", "--repeat", "1", "--pause", "0",
           "--min-time", "0.001", "--no-progress", "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "DEEPNET_BACKEND"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["schema"] == bench.SCHEMA
    assert results["config"]["widths"] == [8, 16] and results["config"]["batches"] == [4, 8]
    machine = results["machine"]
    for key in ("hostname", "cpu", "cores", "python", "versions", "threadpools", "env"):
        assert key in machine, key
    assert machine["versions"]["numpy"] == np.__version__
    per_point = 2 * len(backends) + ("torch" in backends)
    assert len(results["samples"]) == 4 * per_point
    for s in results["samples"]:
        assert s["seconds"] > 0 and s["cpu_s"] >= 0 and s["inner"] >= 1 and s["round"] == 0
    md = (out / "results.md").read_text()
    assert "## float32" in md and "| NumPy | 8 | 4 |" in md and "Crossover map" in md
    assert "| NumPy | 16 | 8 |" in proc.stdout
    assert "faster than NumPy" in proc.stdout
    if "torch" in backends:
        assert "native PyTorch (cpu)" in md
    if _has("matplotlib"):
        assert (out / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True

