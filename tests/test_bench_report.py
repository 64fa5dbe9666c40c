"""``deepnet.bench.report`` and ``deepnet.bench.plots``: the markdown report (intervals,
verdicts and their reasons, the share of clear verdicts, the crossover map as tables) and
the PNGs, or the message saying how to get them."""

from __future__ import annotations

import pytest
from bench_synthetic import synthetic

from deepnet.bench import plots, report
from deepnet.bench.summary import summarize

MIXED = {"torch": lambda n, m: 1.5 if n >= 256 else 0.7, "pytorch@cpu": 0.8}


def test_formats():
    assert report.format_seconds(2.149) == "2.15 s"
    assert report.format_seconds(0.0733) == "73.3 ms"
    assert report.format_seconds(266e-6) == "266 µs"
    assert report.format_ratio(None) == "—"
    assert report.format_ratio({"estimate": 1.071, "lo": 1.02, "hi": 1.1}, "×") == \
        "1.07× [1.02, 1.10]"
    assert report.format_ratio({"estimate": 1.071, "lo": None}) == "1.07 [—]"


def test_markdown_report():
    results = synthetic(MIXED, noise=0.01)
    results["samples"] = [s for s in results["samples"]
                          if not (s["target"] == "torch" and s["n"] == 1024
                                  and s["m"] == 512 and s["round"] >= 4)]
    results["unavailable"] = [{"target": "cupy", "reason": "no CUDA device"}]
    results["skipped"] = [{"target": "numpy", "case": None, "n": 4096, "m": 64,
                           "dtype": "float32", "reason": "time budget"}]
    text = report.render_markdown(results)
    assert "## float32" in text and "### Crossover map" in text
    assert "| backend | n | m | time/step (median) | IQR/median | rounds |" in text
    assert "order-statistic interval at ≥ 95%" in text and "±5% band" in text
    assert "of 12 comparisons with NumPy have a clear verdict" in text
    assert "▲ faster" in text and "▼ slower" in text
    assert "? no clear difference [1]" in text
    assert "1. 4 usable round(s): a 95% interval needs at least 6" in text
    assert "**torch: speedup vs NumPy**" in text and "| n \\ m | 64 | 512 |" in text
    assert "**NumPy: GEMM-floor efficiency**" in text and "77% [" in text  # 1 / 1.3
    assert "## Backends that could not run" in text and "- CuPy: no CUDA device" in text
    assert "- NumPy at n = 4096, m = 64 (float32): time budget" in text


def test_share_sentence():
    rows = summarize(synthetic({"torch": 1.3}, others_cores=lambda t, c, n, m, r: 1.0))
    assert report.share_sentence(rows) == (
        "0 of 6 comparisons with NumPy have a clear verdict (0%): 0 faster, 0 slower, 0 the "
        "same within the band; 0 no clear difference, 6 unreliable.")
    assert report.share_sentence([]) is None


def test_crossover_png_and_throughput_png(tmp_path):
    pytest.importorskip("matplotlib")
    results = synthetic({**MIXED, "cupy": 4.0}, noise=0.01)
    rows = summarize(results)
    assert plots.plot_crossover(results, tmp_path / "crossover.png", rows)
    assert plots.plot_throughput(results, tmp_path / "throughput.png", rows)
    for name in ("crossover.png", "throughput.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plots.plot_crossover(results, tmp_path / "none.png", [])


def test_without_matplotlib_no_png_and_the_message_says_how(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "have_matplotlib", lambda: False)
    results = synthetic(MIXED)
    assert not plots.plot_crossover(results, tmp_path / "c.png", summarize(results))
    assert not (tmp_path / "c.png").exists()
    assert "pip install 'deepnet[bench]'" in plots.NO_MATPLOTLIB
    assert "--render" in plots.NO_MATPLOTLIB
