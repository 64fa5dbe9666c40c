"""``deepnet bench compare``: a run against itself shows no regression; against the same
run with a 20 % slowdown injected into one backend, that backend is flagged at every point
and no other is; unreliable points are never called regressions."""

from __future__ import annotations

import copy
import json

import pytest
from bench_synthetic import POINTS, synthetic

from deepnet.bench import cli
from deepnet.bench.compare import compare_runs, render_compare

SPEEDUPS = {"torch": 1.3, "pytorch@cpu": 0.8}


def _slowed(results, target="torch", factor=1.2):
    out = copy.deepcopy(results)
    for s in out["samples"]:
        if s["target"] == target:
            s["seconds"] *= factor
    out["source"] = "slowed"
    return out


def test_a_run_against_itself_has_no_regression():
    a = synthetic(SPEEDUPS, seed=1)
    changes, only_a, only_b = compare_runs(a, copy.deepcopy(a))
    assert changes and not only_a and not only_b
    assert {c.label for c in changes} == {"same"}
    for c in changes:
        assert c.ratio.estimate == pytest.approx(1.0)


def test_a_run_against_an_independent_rerun_has_no_regression():
    changes, _, _ = compare_runs(synthetic(SPEEDUPS, seed=1), synthetic(SPEEDUPS, seed=2))
    assert not [c for c in changes if c.label in ("slower", "faster")]


def test_an_injected_20_percent_slowdown_is_flagged_at_every_point():
    a = synthetic(SPEEDUPS, seed=1)
    changes, _, _ = compare_runs(a, _slowed(synthetic(SPEEDUPS, seed=2)))
    torch = [c for c in changes if c.target == "torch"]
    assert len(torch) == len(POINTS)
    assert all(c.label == "slower" for c in torch), [(c.n, c.m, c.ratio) for c in torch]
    assert all(c.ratio.estimate == pytest.approx(1.2, rel=0.03) for c in torch)
    assert all(c.label == "same" for c in changes if c.target != "torch")
    text = render_compare(a, _slowed(a), *compare_runs(a, _slowed(a))[0:1], [], [])
    assert text.count("| REGRESSION |") == len(POINTS)
    assert f"{len(POINTS)} regression(s)" in text


def test_an_improvement_and_unreliable_points():
    a = synthetic(SPEEDUPS, seed=1)
    faster = _slowed(synthetic(SPEEDUPS, seed=2), "numpy", 0.8)
    assert {c.label for c in compare_runs(a, faster)[0] if c.target == "numpy"} == {"faster"}
    noisy = _slowed(synthetic(SPEEDUPS, seed=2, others_cores=lambda *_: 1.0), "torch", 1.5)
    labels = {c.label for c in compare_runs(a, noisy)[0]}
    assert labels == {"unreliable"}


def test_render_shows_both_machines_and_version_changes():
    a = synthetic(SPEEDUPS, seed=1)
    b = synthetic(SPEEDUPS, seed=2, machine={"hostname": "gpu-box", "cpu": "other CPU",
                                              "cores_usable": 16,
                                              "versions": {"numpy": "2.4.6", "torch": "2.14.0"},
                                              "gpu": {"name": "NVIDIA H200"}})
    b["samples"] = [s for s in b["samples"] if (s["n"], s["m"]) != POINTS[0]]
    text = render_compare(a, b, *compare_runs(a, b))
    assert "host `h`, test CPU, 2 usable cores" in text
    assert "host `gpu-box`, other CPU, 16 usable cores, GPU NVIDIA H200" in text
    assert "host h → gpu-box" in text and "torch 2.13.0 → 2.14.0" in text
    assert f"Only in A: NumPy n = {POINTS[0][0]}, m = {POINTS[0][1]}" in text
    assert "| backend | dtype | n | m | A time/step | B time/step | B ÷ A | change |" in text


def test_the_command(tmp_path, capsys):
    a = synthetic(SPEEDUPS, seed=1)
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(_slowed(a)))
    assert cli.main(["compare", str(tmp_path / "a.json"), str(tmp_path / "a.json")]) == 0
    assert "0 regression(s)" in capsys.readouterr().out
    assert cli.main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                     "--fail-on-regression"]) == 1
    assert "REGRESSION" in capsys.readouterr().out
    assert cli.main(["compare", str(tmp_path / "a.json"), str(tmp_path / "nope.json")]) == 2
    assert "no saved results" in capsys.readouterr().err


def test_runs_of_different_setups_are_flagged_and_runs_without_a_common_point_refused(
        tmp_path, capsys):
    """Another BLAS thread count (OPENBLAS_NUM_THREADS) with everything else equal: the
    table's regressions are the setup's; the report says so. float32 against float64
    shares no point: "0 regression(s)" and status 0 said nothing was wrong."""
    a = synthetic(SPEEDUPS, seed=1)
    b = _slowed(synthetic(SPEEDUPS, seed=2))
    b["machine"]["env"] = {"OPENBLAS_NUM_THREADS": "1"}
    text = render_compare(a, b, *compare_runs(a, b))
    assert "REGRESSION" in text
    assert "WARNING: the two runs were measured on different setups" in text
    assert "OPENBLAS_NUM_THREADS=None → 1" in text
    assert "WARNING" not in render_compare(a, a, *compare_runs(a, a))
    c = synthetic(SPEEDUPS, seed=3)
    for sample in c["samples"]:
        sample["dtype"] = "float64"
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "c.json").write_text(json.dumps(c))
    assert cli.main(["compare", str(tmp_path / "a.json"), str(tmp_path / "c.json"),
                     "--fail-on-regression"]) == 2
    assert "share no measured point" in capsys.readouterr().err
