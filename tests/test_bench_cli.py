"""The ``deepnet bench`` command: arguments refused up front, output folders checked before
any measurement, a backend that cannot run reported and skipped (never a traceback),
``--render``, and one tiny sweep end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest
from bench_synthetic import synthetic

import deepnet.backend
from deepnet import cli as deepnet_cli
from deepnet.bench import SCHEMA, cli
from deepnet.errors import BackendError


@pytest.mark.parametrize("args", [
    ["--backends", "nope"], ["--widths", "a,b"], ["--widths", "0"], ["--dtype", "float16"],
    ["--repeat", "0"], ["--cases", "sideways"], ["--points", "8x"], ["--max-width", "numpy"],
    ["--confidence", "1.5"], ["--band", "0"], ["--repeat", "8", "--max-rounds", "6"],
    ["--time-budget", "-1"],
])
def test_bad_arguments_are_refused(args, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([*args, "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "deepnet bench" in capsys.readouterr().err


def _no_sweep(*args, **kwargs):
    raise AssertionError("the sweep must not start")


def test_an_unusable_out_is_refused_before_measuring(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "run_sweep", _no_sweep)
    (tmp_path / "file").write_text("x")
    assert cli.main(["--backends", "numpy", "--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists and is not a folder" in err
    assert cli.main(["--backends", "numpy", "--out", str(tmp_path / "file" / "x")]) == 2
    assert "cannot write into --out" in capsys.readouterr().err


class _Stop(Exception):
    pass


def test_backend_names_take_the_spellings_of_deepnet_train(tmp_path, monkeypatch):
    """``--backends`` and ``--max-width`` take the package's hyphens and any case, as
    ``deepnet train --backend`` does (``array-api-strict`` was refused as unknown)."""
    seen = {}

    def capture(config, **kwargs):
        seen["backends"], seen["max_width"] = config.backends, config.max_width
        raise _Stop

    monkeypatch.setattr(cli, "run_sweep", capture)
    with pytest.raises(_Stop):
        cli.main(["--backends", "Array-API-Strict, NumPy", "--max-width",
                  "array-api-strict=128", "--no-reference", "--out", str(tmp_path)])
    assert seen == {"backends": ["array_api_strict", "numpy"],
                    "max_width": {"array_api_strict": 128}}


def _cupy_without_a_device(monkeypatch):
    """CuPy importable, but its device calls fail (as CUDARuntimeError does)."""
    real = deepnet.backend.get_backend

    def get_backend(name=None, device=None):
        if name == "cupy":
            raise BackendError("backend 'cupy' needs a CUDA device, and none is usable here "
                               "(CUDARuntimeError: cudaErrorNoDevice)")
        return real(name, device)

    def broken():
        raise RuntimeError("CUDARuntimeError: cudaErrorNoDevice: no CUDA-capable device")

    monkeypatch.setattr(deepnet.backend, "get_backend", get_backend)
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(
        get_default_memory_pool=broken, __version__="14.2.0"))


def test_cupy_without_a_device_is_reported_and_skipped(tmp_path, monkeypatch, capsys):
    _cupy_without_a_device(monkeypatch)
    out = tmp_path / "res"
    assert cli.main(["--backends", "numpy,cupy", "--widths", "4", "--batches", "2",
                     "--repeat", "6", "--max-rounds", "6", "--min-time", "0.0005",
                     "--no-reference", "--no-progress", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "cupy cannot run here and is skipped: backend 'cupy' needs a CUDA device" \
        in captured.err
    results = json.loads((out / "results.json").read_text())
    assert results["unavailable"][0]["target"] == "cupy"
    assert {s["target"] for s in results["samples"]} == {"numpy"}
    assert "## Backends that could not run" in (out / "results.md").read_text()
    monkeypatch.setattr(cli, "run_sweep", _no_sweep)
    assert cli.main(["--backends", "cupy", "--out", str(out)]) == 2
    assert "none of the backends asked for can run here" in capsys.readouterr().err


def test_default_backends_report_an_installed_cupy_that_cannot_run(monkeypatch):
    _cupy_without_a_device(monkeypatch)
    real_find = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec",
                        lambda name: object() if name == "cupy" else real_find(name))
    usable, unavailable = cli.default_backends()
    assert "numpy" in usable and "cupy" not in usable
    assert [u["target"] for u in unavailable if u["target"] == "cupy"] == ["cupy"]


def test_render_rewrites_reports_and_says_how_to_get_plots(tmp_path, monkeypatch, capsys):
    (tmp_path / "results.json").write_text(json.dumps(synthetic({"torch": 1.3})))
    raw = (tmp_path / "results.json").read_bytes()
    assert cli.main(["--render", "--out", str(tmp_path), "--band", "0.5"]) == 0
    assert (tmp_path / "results.json").read_bytes() == raw  # the measured data stays as is
    text = (tmp_path / "results.md").read_text()
    assert "±50% band" in text and "## float32" in text
    monkeypatch.setattr(cli, "have_matplotlib", lambda: False)
    monkeypatch.setattr("deepnet.bench.plots.have_matplotlib", lambda: False)
    (tmp_path / "crossover.png").unlink(missing_ok=True)
    assert cli.main(["--render", "--out", str(tmp_path)]) == 0
    assert "pip install 'deepnet[bench]'" in capsys.readouterr().err
    assert not (tmp_path / "crossover.png").exists()
    assert cli.main(["--render", "--out", str(tmp_path / "none")]) == 2


def test_deepnet_command_forwards_compare(tmp_path, capsys):
    (tmp_path / "a.json").write_text(json.dumps(synthetic({"torch": 1.3})))
    assert deepnet_cli.main(["bench", "compare", str(tmp_path / "a.json"),
                             str(tmp_path / "a.json")]) == 0
    assert "0 regression(s)" in capsys.readouterr().out


def test_tiny_sweep_end_to_end(tmp_path):
    """``python -m deepnet.bench`` on a tiny grid: JSON, markdown, PNGs and the printout."""
    backends = ["numpy", "array_api_strict"]
    if _has("torch"):
        backends.append("torch")
    out = tmp_path / "res"
    cmd = [sys.executable, "-m", "deepnet.bench", "--backends", ",".join(backends),
           "--widths", "8,16", "--batches", "4,8", "--repeat", "6", "--max-rounds", "6",
           "--min-time", "0.001", "--time-budget", "120", "--no-progress", "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "DEEPNET_BACKEND"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["schema"] == SCHEMA
    assert results["config"]["widths"] == [8, 16] and results["config"]["batches"] == [4, 8]
    assert results["config"]["criteria"]["confidence"] == 0.95
    machine = results["machine"]
    for key in ("hostname", "cpu", "cores", "python", "versions", "threadpools", "env"):
        assert key in machine, key
    per_point = 2 * len(backends) + ("torch" in backends)
    assert len(results["samples"]) == 4 * 6 * per_point
    assert results["budget"]["budget_s"] == 120 and results["elapsed_s"] < 120
    md = (out / "results.md").read_text()
    assert "## float32" in md and "| NumPy | 8 | 4 |" in md and "Crossover map" in md
    assert "comparisons with NumPy have a clear verdict" in proc.stdout
    assert "| NumPy | 16 | 8 |" in proc.stdout and "(time budget 120 s)" in proc.stdout
    if "torch" in backends:
        assert "native PyTorch (cpu)" in md
    if _has("matplotlib"):
        for name in ("crossover.png", "throughput.png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True
