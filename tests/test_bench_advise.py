"""``--advise N M``: from the measured grid only; the bracketing points with their
intervals inside it, what to run outside it; the shipped results found on a fresh clone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_synthetic import synthetic

from deepnet.bench import cli
from deepnet.bench.advise import advise, bracket
from deepnet.bench.results import shipped_results

FAST = {"torch": 1.3, "pytorch@cpu": 0.8}


@pytest.mark.parametrize("values, x, expected", [
    ([64, 256, 1024], 256, [256]), ([64, 256, 1024], 300, [256, 1024]),
    ([64, 256, 1024], 63, None), ([64, 256, 1024], 2048, None), ([], 5, None),
])
def test_bracket(values, x, expected):
    assert bracket(values, x) == expected


def test_at_a_measured_point():
    text = advise(synthetic(FAST), 256, 512)
    assert "Answering from synthetic (measured 2026-12-02 on test CPU, 2 usable cores; " \
           "float32)." in text
    assert "(n = 256, m = 512) was measured." in text
    assert "torch: (256, 512) ▲ 1.30× [" in text
    assert "native PyTorch (cpu): (256, 512) ▼ 0.80× [" in text
    assert "Advice: use torch: faster than every other backend measured here" in text


def test_inside_the_grid_from_the_bracketing_points():
    text = advise(synthetic(FAST), 300, 100)
    assert "(n = 300, m = 100) was not measured; it lies inside the grid, and the answer " \
           "rests on the bracketing points (n = 256, m = 64), (n = 256, m = 512), " \
           "(n = 1024, m = 64), (n = 1024, m = 512)." in text
    assert text.count("▲ 1.3") == 4  # 1.29× … 1.31×: noisy synthetic rounds
    assert "Advice: use torch" in text and "at all 4 bracketing points" in text


def test_outside_the_grid_it_says_what_to_run():
    for n, m in ((2048, 64), (64, 8192), (16, 64)):
        text = advise(synthetic(FAST), n, m)
        assert f"(n = {n}, m = {m}) is outside the measured grid (widths 64–1024, " \
               "batches 64–512)" in text
        assert f"deepnet bench --widths {n} --batches {m}" in text
        assert "Advice" not in text and "▲" not in text


def test_a_missing_bracketing_point_gives_no_answer():
    results = synthetic(FAST)
    results["samples"] = [s for s in results["samples"] if (s["n"], s["m"]) != (256, 512)]
    text = advise(results, 300, 100)
    assert "(n = 256, m = 512) were not measured" in text and "Advice" not in text


def test_ties_and_disagreements():
    text = advise(synthetic({"torch": 1.0}, noise=0.005), 256, 512)
    assert "Advice: NumPy or torch: here they are the same within ±5%" in text
    mixed = synthetic({"torch": lambda n, m: 1.5 if n >= 1024 else 0.7})
    text = advise(mixed, 300, 100)
    assert "Advice: none with confidence" in text
    assert "deepnet bench --widths 300 --batches 100" in text


def test_dtypes():
    with pytest.raises(ValueError, match="no float64 timings"):
        advise(synthetic(FAST), 256, 512, dtype="float64")


def test_cli_advise_finds_the_last_run_then_the_shipped_results(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "results.json").write_text(json.dumps(synthetic(FAST)))
    assert cli.main(["--advise", "256", "512", "--out", "mine"]) == 0
    assert "Advice: use torch" in capsys.readouterr().out
    assert cli.main(["--advise", "256", "512", "--out", "missing"]) == 2
    assert "no saved results at missing" in capsys.readouterr().err
    (tmp_path / "bench-results").mkdir()
    (tmp_path / "bench-results" / "results.json").write_text(
        json.dumps(synthetic({"torch": 0.5})))
    assert cli.main(["--advise", "256", "512"]) == 0
    out = capsys.readouterr().out
    assert "Answering from bench-results/results.json" in out and "Advice: use NumPy" in out
    (tmp_path / "bench-results" / "results.json").unlink()
    shipped = shipped_results()
    if not shipped:
        pytest.skip("this deepnet is not a source checkout: no benchmarks/results here")
    assert cli.main(["--advise", "256", "512"]) == 0
    out = capsys.readouterr().out
    assert f"Answering from {shipped[0]}" in out
    assert Path(shipped[0]).parent.name == "cpu"
