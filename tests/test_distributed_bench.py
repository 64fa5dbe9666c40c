"""The distributed benchmarks run (a smoke run each): benchmarks/mpi_allreduce.py under
``mpiexec -n 2`` and the model built from its output; benchmarks/mpi_scaling.py."""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import deepnet as dn

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SRC = str(Path(dn.__file__).resolve().parents[1])
_BESIDE = Path(sys.executable).with_name("mpiexec")
MPIEXEC = str(_BESIDE) if _BESIDE.exists() else (shutil.which("mpiexec") or str(_BESIDE))

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.skipif(not BENCH.is_dir(), reason="no benchmarks/ next to tests/"),
    pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None or not Path(MPIEXEC).exists(),
                       reason="needs mpi4py and mpiexec: pip install 'deepnet[mpi]'"),
    pytest.mark.skipif(importlib.util.find_spec("threadpoolctl") is None,
                       reason="needs threadpoolctl (the bench extra)"),
]


def run(command: list[str], limit: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(command, capture_output=True, text=True, timeout=limit, env=env,
                          check=False)


def test_allreduce_benchmark_and_model(tmp_path):
    proc = run([MPIEXEC, "-n", "2", sys.executable, str(BENCH / "mpi_allreduce.py"), "--quick",
                "--out", str(tmp_path)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "allreduce.json").read_text())
    assert data["ranks"] == 2 and set(data["allreduce"]) == {"64", "256"}
    assert all(len(v) == 2 and min(v) > 0 for v in data["ping"].values())
    assert data["allreduce"]["256"]["params"] == 4 * (256 * 256 + 256) + 257
    proc = run([sys.executable, str(BENCH / "mpi_model.py"), str(tmp_path)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (tmp_path / "model.md").read_text()
    for heading in ("Shared memory, 2 ranks (measured)", "Where it pays", "100 Gb/s InfiniBand"):
        assert heading in text


def test_scaling_benchmark_runs_or_says_what_it_needs(tmp_path):
    proc = run([sys.executable, str(BENCH / "mpi_scaling.py"), "--quick", "--out",
                str(tmp_path)], limit=600)
    if "comm" not in inspect.signature(dn.DeepNet.fit).parameters:
        assert proc.returncode != 0 and "needs DeepNet.fit(..., comm=comm)" in proc.stderr
        return
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mpiexec -n 2, 1 thread each" in (tmp_path / "scaling.md").read_text()
