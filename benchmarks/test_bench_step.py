"""pytest-benchmark suite: deepnet's forward, backward and training step on each backend,
the GEMM floor under them, and native PyTorch, grouped per (dtype, n, m).

The network is ``[n, n, n, n, n, 1]`` (4 hidden ReLU layers, sigmoid output), full batch
``m``; the cases are built by :mod:`deepnet.bench`, so this suite and ``deepnet bench``
time the same callables. Every call ends with the backend's ``synchronize()``.

    pytest benchmarks -m "not large"                          # timings, CPU-sized points
    pytest benchmarks --benchmark-disable -m "not large"      # each case once (CI smoke)
    DEEPNET_BENCH_BACKENDS=cupy,torch:cuda pytest benchmarks  # a GPU machine, every size

Points too big for a 2-core CPU (n = 4096 on the CPU, n > 256 on array-api-strict) are
marked ``large``.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import deepnet as dn
from deepnet import bench
from deepnet.bench.timing import SystemClock, wait_idle

WIDTHS = (64, 256, 1024, 4096)
BATCHES = (64, 512, 4096)
ALL_TARGETS = ("numpy", "array_api_strict", "torch", "torch:cuda", "cupy")
KINDS = ("forward", "backward", "step", "floor")
PAUSE = 0.2  # seconds at most for other libraries' thread pools to go idle before timing


def _targets() -> list[str]:
    wanted = os.environ.get("DEEPNET_BENCH_BACKENDS", "").strip()
    if not wanted:
        return list(ALL_TARGETS)
    ids = [w.strip() for w in wanted.split(",") if w.strip()]
    unknown = [i for i in ids if i not in ALL_TARGETS]
    if unknown:
        raise pytest.UsageError(
            f"DEEPNET_BENCH_BACKENDS names unknown backends {unknown}; "
            f"valid: {', '.join(ALL_TARGETS)}"
        )
    return ids


def _grid() -> list[tuple[int, int]]:
    smoke = os.environ.get("DEEPNET_BENCH_SMOKE", "").strip() not in ("", "0")
    return [(n, m) for n in WIDTHS for m in BATCHES if not smoke or (n <= 256 and m <= 512)]


def _marks(target: str, n: int, m: int) -> list:
    return [pytest.mark.large] if bench.is_large(target, n, m) else []


DEEPNET_PARAMS = [
    pytest.param(target, n, m, kind, marks=_marks(target, n, m),
                 id=f"{kind}-{target}-n{n}-m{m}")
    for target in _targets() for n, m in _grid() for kind in KINDS
]
REFERENCE_DEVICES = [d for d in ("cpu", "cuda")
                     if any(bench.is_gpu(t) == (d == "cuda") for t in _targets())]
REFERENCE_PARAMS = [
    pytest.param(device, n, m, marks=_marks("torch" if device == "cpu" else "torch:cuda", n, m),
                 id=f"pytorch-{device}-n{n}-m{m}")
    for device in REFERENCE_DEVICES for n, m in _grid()
]


def _load(target: str) -> dn.backend.Backend:
    try:
        return dn.get_backend(*bench.parse_target(target))
    except dn.BackendError as exc:
        pytest.skip(f"{target} unavailable here: {exc}")


def _run(benchmark, case: bench.Case, n: int, m: int, dtype: str):
    """Warm up, wait for the pools to go idle, time ``case`` (synchronized); its last
    result."""
    benchmark.group = f"{dtype} n={n} m={m}"
    flops = bench.step_flops(bench.layer_dims(n), m)
    benchmark.extra_info.update(target=case.target, case=case.kind, n=n, m=m, dtype=dtype,
                                step_flops=flops)
    if not benchmark.disabled:
        case()
        wait_idle(SystemClock(), PAUSE)
    result = benchmark(case)
    if benchmark.stats is not None:
        benchmark.extra_info["step_gflops_at_min"] = flops / benchmark.stats.stats.min / 1e9
    return result


@pytest.mark.parametrize(("target", "n", "m", "kind"), DEEPNET_PARAMS)
def test_deepnet(benchmark, target: str, n: int, m: int, kind: str, bench_dtype: str) -> None:
    backend = _load(target)
    case = bench.deepnet_cases(target, n, m, bench_dtype, kinds=[kind])[kind]
    out = _run(benchmark, case, n, m, bench_dtype)
    if kind == "forward":
        AL = dn.to_numpy(out)
        assert AL.shape == (1, m)
        assert np.all((AL >= 0) & (AL <= 1)), "sigmoid output outside [0, 1]"
    elif kind == "backward":
        assert sorted(out) == sorted(f"d{p}{l}" for l in range(1, 6) for p in "Wb")
        for l in range(1, 6):
            dW = dn.to_numpy(out[f"dW{l}"])
            assert dW.shape == ((1 if l == 5 else n), n)
            assert np.all(np.isfinite(dW))
    elif kind == "step":
        J = float(dn.to_numpy(out))
        assert math.isfinite(J) and J > 0, J
    else:
        A = dn.to_numpy(out)  # the last floor matmul, dA1 = W2.T @ dZ2
        assert A.shape == (n, m)
        assert np.all(np.isfinite(A)) and np.any(A != 0)
    assert backend.owns(out if kind != "backward" else out["dW1"])


@pytest.mark.parametrize(("device", "n", "m"), REFERENCE_PARAMS)
def test_pytorch_reference(benchmark, device: str, n: int, m: int, bench_dtype: str) -> None:
    torch = pytest.importorskip("torch", reason="native PyTorch reference needs torch")
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device here")
    case = bench.reference_case("cuda:0" if device == "cuda" else "cpu", n, m, bench_dtype)
    loss = _run(benchmark, case, n, m, bench_dtype)
    assert loss.dtype == getattr(torch, bench_dtype)
    value = float(loss.detach())
    assert math.isfinite(value) and value > 0, value
