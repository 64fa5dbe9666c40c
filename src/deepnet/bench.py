"""``deepnet bench``: the backend sweep — step time, GEMM floor, PyTorch reference, crossovers.

The network under test has 4 hidden ReLU layers of width ``n`` and one sigmoid output,
``[n, n, n, n, n, 1]``, trained full-batch (``m`` examples) with plain gradient descent.
At each grid point ``(n, m)`` and for each backend the sweep times

``step``      ``deepnet.step.train_step`` (forward, cost, backward, in-place update);
``floor``     the 14 matmuls a step needs, on arrays of the same shapes in the backend's
              own library (written into preallocated outputs where it has ``out=``);
``forward``, ``backward`` (optional, ``--cases``);

and, once per device, an idiomatic PyTorch step (``nn.Sequential`` + ``BCEWithLogitsLoss``
+ ``optim.SGD``) as the reference. Flops per step are ``6 · Σ n[l]·n[l-1]·m``.

Thread pools skew back-to-back timings of different libraries (OpenBLAS workers spin
~0.1 s after each call), so the sweep sleeps ``--pause`` seconds before every sample and
takes the samples in alternating rounds (one sample of every case per round, the order
rotated each round); ratios are medians of per-round ratios.

Writes ``results.json`` (machine, versions, BLAS kernel, speed-relevant environment, the
grid and every raw sample), ``results.md`` (table and crossover map) and
``throughput.png`` into ``--out``; ``--advise N M`` answers for one size from a saved run.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = "deepnet-bench/1"
HIDDEN_LAYERS = 4
LEARNING_RATE = 0.01
DEFAULT_WIDTHS = (64, 256, 1024)
DEFAULT_BATCHES = (64, 512, 4096)
CPU_TARGETS = ("numpy", "array_api_strict", "torch")
GPU_TARGETS = ("cupy", "torch:cuda")
DEEPNET_CASES = ("step", "floor", "forward", "backward")
DEFAULT_MAX_WIDTH = {"array_api_strict": 256}
REFERENCE_PREFIX = "pytorch@"
BASELINE = "numpy"
ENV_PREFIXES = ("OPENBLAS_", "OMP_", "MKL_", "GOMP_", "KMP_", "DEEPNET_", "CUPY_",
                "CUBLAS_", "TORCH_", "NVIDIA_TF32")
ENV_NAMES = ("CUDA_VISIBLE_DEVICES", "PYTORCH_CUDA_ALLOC_CONF", "MALLOC_ARENA_MAX")
PRETTY = {"numpy": "NumPy", "array_api_strict": "array-api-strict", "cupy": "CuPy"}


# ---------------------------------------------------------------------------------------
# the pure parts: shapes, flops, names


def layer_dims(n: int) -> list[int]:
    """``[n, n, n, n, n, 1]``: input of width ``n``, 4 hidden layers, one output unit."""
    return [n] * (HIDDEN_LAYERS + 1) + [1]


def step_flops(dims: Sequence[int], m: int) -> int:
    """Flops of one training step, ``6 · Σ_l n[l]·n[l-1]·m`` (the convention reported)."""
    return 6 * m * sum(dims[l] * dims[l - 1] for l in range(1, len(dims)))


def floor_matmuls(dims: Sequence[int], m: int) -> list[tuple[str, int, int, int]]:
    """The matmuls one step needs, as ``(what, rows, inner, cols)``.

    Forward ``W[l] @ A[l-1]`` for every layer, backward ``dZ[l] @ A[l-1].T`` for every
    layer and ``W[l].T @ dZ[l]`` for ``l >= 2`` (``dA[0]`` is not needed): ``3L - 1``.
    """
    L = len(dims) - 1
    ops = [(f"Z{l} = W{l} @ A{l - 1}", dims[l], dims[l - 1], m) for l in range(1, L + 1)]
    ops += [(f"dW{l} = dZ{l} @ A{l - 1}.T", dims[l], m, dims[l - 1]) for l in range(L, 0, -1)]
    ops += [(f"dA{l - 1} = W{l}.T @ dZ{l}", dims[l - 1], dims[l], m) for l in range(L, 1, -1)]
    return ops


def parse_target(label: str) -> tuple[str, str | None]:
    """``"torch:cuda:1"`` → ``("torch", "cuda:1")``; ``"numpy"`` → ``("numpy", None)``."""
    name, _, device = label.partition(":")
    return name, (device or None)


def is_reference(target: str) -> bool:
    return target.startswith(REFERENCE_PREFIX)


def is_gpu(target: str) -> bool:
    """Whether ``target`` (a backend label or a reference) runs on a GPU."""
    if is_reference(target):
        return target != REFERENCE_PREFIX + "cpu"
    name, device = parse_target(target)
    return name == "cupy" or (name == "torch" and (device or "cpu").startswith("cuda"))


def reference_target(target: str) -> str:
    """The PyTorch reference on ``target``'s device: ``pytorch@cpu``, ``pytorch@cuda:0``."""
    name, device = parse_target(target)
    if not is_gpu(target):
        return REFERENCE_PREFIX + "cpu"
    if name == "cupy":
        return f"{REFERENCE_PREFIX}cuda:{(device or '0').removeprefix('cuda:')}"
    return REFERENCE_PREFIX + (device if device and ":" in device else "cuda:0")


def is_large(target: str, n: int, m: int) -> bool:
    """Points too big for a 2-core CPU run: n ≥ 4096 on the CPU, n > 256 on the referee."""
    if is_gpu(target):
        return False
    if parse_target(target)[0] == "array_api_strict":
        return n > DEFAULT_MAX_WIDTH["array_api_strict"]
    return n >= 4096


def pretty(target: str) -> str:
    if is_reference(target):
        return f"native PyTorch ({target.removeprefix(REFERENCE_PREFIX)})"
    return PRETTY.get(target, target)


# ---------------------------------------------------------------------------------------
# the cases: one callable per thing timed, plus the device sync that ends it


@dataclass
class Case:
    """``fn()`` does one unit of work (queued, on a GPU); ``sync()`` waits for the device."""

    target: str
    kind: str
    fn: Callable[[], Any]
    sync: Callable[[], None]

    def __call__(self) -> Any:
        """One unit of work, synchronized (what pytest-benchmark times)."""
        out = self.fn()
        self.sync()
        return out


def _no_sync() -> None:
    return None


def make_data(n: int, m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Host data: ``X (n, m)`` standard normal, ``Y (1, m)`` of 0/1 labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, m))
    Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    return X, Y


def deepnet_cases(
    target: str, n: int, m: int, dtype: str = "float32", seed: int = 0,
    kinds: Iterable[str] = DEEPNET_CASES,
) -> dict[str, Case]:
    """deepnet's ``step``/``forward``/``backward`` and the GEMM ``floor`` on ``target``."""
    import deepnet as dn
    from deepnet.optimizers import GD
    from deepnet.step import train_step

    kinds = list(kinds)
    unknown = [k for k in kinds if k not in DEEPNET_CASES]
    if unknown:
        raise ValueError(f"unknown case kinds {unknown}; valid: {', '.join(DEEPNET_CASES)}")
    name, device = parse_target(target)
    net = dn.DeepNet(layer_dims(n), hidden="relu", output="sigmoid", dtype=dtype, seed=seed,
                     backend=name, device=device)
    sync = net.backend.synchronize
    cases: dict[str, Case] = {}
    if {"step", "forward", "backward"} & set(kinds):
        Xh, Yh = make_data(n, m, seed)
        X = net._check_X(Xh)
        Y = net._check_Y(Yh, m)
    if "forward" in kinds:
        cases["forward"] = Case(target, "forward", lambda: net._forward(X)[0], sync)
    if "backward" in kinds:
        AL, caches = net._forward(X)
        cases["backward"] = Case(target, "backward", lambda: net._backward(AL, Y, caches), sync)
    if "step" in kinds:
        optimizer = GD(learning_rate=LEARNING_RATE)
        cases["step"] = Case(target, "step", lambda: train_step(net, X, Y, optimizer), sync)
    if "floor" in kinds:
        cases["floor"] = floor_case(net.backend, target, n, m, dtype, seed)
    return cases


def floor_case(backend: Any, target: str, n: int, m: int, dtype: str, seed: int = 0) -> Case:
    """The 14 matmuls of one step on ``backend``, inputs and outputs preallocated."""
    dims = layer_dims(n)
    L = len(dims) - 1
    rng = np.random.default_rng(seed + 1)
    dt = backend.dtype(dtype)

    def rand(shape: tuple[int, int]) -> Any:  # never zeros: they can run faster
        return backend.asarray(rng.standard_normal(shape) * 0.1, dt)

    W = {l: rand((dims[l], dims[l - 1])) for l in range(1, L + 1)}
    A = {l: rand((dims[l], m)) for l in range(L)}
    dZ = {l: rand((dims[l], m)) for l in range(1, L + 1)}
    pairs = [(W[l], A[l - 1]) for l in range(1, L + 1)]
    pairs += [(dZ[l], A[l - 1].T) for l in range(L, 0, -1)]
    pairs += [(W[l].T, dZ[l]) for l in range(L, 1, -1)]
    assert len(pairs) == len(floor_matmuls(dims, m))
    if backend.supports_out:
        matmul = backend.lib.matmul
        xp = backend.xp
        ops = [(a, b, xp.empty((a.shape[0], b.shape[1]), dtype=dt, device=backend.device))
               for a, b in pairs]

        def floor() -> Any:
            for a, b, out in ops:
                matmul(a, b, out=out)
            return ops[-1][2]
    else:
        def floor() -> Any:
            for a, b in pairs:
                out = a @ b
            return out

    return Case(target, "floor", floor, backend.synchronize)


def reference_case(device: str, n: int, m: int, dtype: str = "float32", seed: int = 0) -> Case:
    """An idiomatic PyTorch training step (row layout) on ``device`` ("cpu", "cuda:0")."""
    import torch
    from torch import nn

    dev = torch.device(device)
    tdtype = getattr(torch, dtype)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for _ in range(HIDDEN_LAYERS):
            layers += [nn.Linear(n, n), nn.ReLU()]
        layers.append(nn.Linear(n, 1))
        model = nn.Sequential(*layers).to(device=dev, dtype=tdtype)
    Xh, Yh = make_data(n, m, seed)
    X = torch.as_tensor(np.ascontiguousarray(Xh.T), dtype=tdtype, device=dev)
    Y = torch.as_tensor(np.ascontiguousarray(Yh.T), dtype=tdtype, device=dev)
    loss_fn = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)

    def step() -> Any:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(X), Y)
        loss.backward()
        optimizer.step()
        return loss

    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else _no_sync
    return Case(REFERENCE_PREFIX + device, "step", step, sync)


# ---------------------------------------------------------------------------------------
# timing


def calibrate(case: Case, min_time: float) -> tuple[int, float]:
    """Warm ``case`` up; return ``(inner, first)``: calls per sample and the first call's time.

    ``inner`` makes one sample last at least ``min_time`` seconds.
    """
    case.sync()
    t0 = time.perf_counter()
    case()
    first = time.perf_counter() - t0
    estimate = first
    if first < 3.0:  # one-time costs (JIT, handles, first-touch pages) can dominate it
        t0 = time.perf_counter()
        case()
        estimate = time.perf_counter() - t0
    if estimate >= min_time:
        return 1, first
    calls, total = 0, 0.0
    while total < min_time and calls < 100_000:
        batch = max(1, calls)
        t0 = time.perf_counter()
        for _ in range(batch):
            case.fn()
        case.sync()
        total += time.perf_counter() - t0
        calls += batch
    per_call = total / calls
    return max(1, math.ceil(min_time / max(per_call, 1e-9))), first


def sample(case: Case, inner: int, pause: float) -> tuple[float, float]:
    """Seconds per call of ``case`` over ``inner`` calls, after letting the pools go idle.

    Returns ``(wall, cpu)`` per call; ``cpu`` is this process's CPU time (all threads), so
    ``cpu / wall`` well under the thread count shows that others held the cores.
    """
    case.sync()
    if pause > 0:
        time.sleep(pause)
    c0 = time.process_time()
    t0 = time.perf_counter()
    for _ in range(inner):
        case.fn()
    case.sync()
    wall = time.perf_counter() - t0
    return wall / inner, (time.process_time() - c0) / inner


# ---------------------------------------------------------------------------------------
# the machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cupy_version() -> str | None:
    if "cupy" in sys.modules:
        return sys.modules["cupy"].__version__
    for dist in ("cupy", "cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x"):
        if _version(dist):
            return _version(dist)
    return None


def speed_env() -> dict[str, str]:
    """The environment variables that change speed (thread pools, kernels, deepnet's)."""
    return {k: v for k, v in sorted(os.environ.items())
            if k.startswith(ENV_PREFIXES) or k in ENV_NAMES}


def _git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info(targets: Sequence[str] = ()) -> dict[str, Any]:
    """Host, CPU, GPU, Python, library versions, BLAS kernel and the speed-relevant env."""
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "python": platform.python_version(),
        "python_build": sys.version,
        "versions": {
            "deepnet": _version("deepnet"),
            "numpy": np.__version__,
            "array_api_compat": _version("array-api-compat"),
            "array_api_strict": _version("array-api-strict"),
            "torch": _version("torch"),
            "cupy": _cupy_version(),
            "threadpoolctl": _version("threadpoolctl"),
            "matplotlib": _version("matplotlib"),
        },
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "git": _git_commit(),
        "env": speed_env(),  # before threadpoolctl, which sets KMP_DUPLICATE_LIB_OK
        "gpu": None,
    }
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                   / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        info["memory_gib"] = None
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = threadpool_info()
    except ImportError:
        info["threadpools"] = None
    try:
        info["numpy_blas"] = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:  # the layout of numpy's build info is not a stable API
        info["numpy_blas"] = None
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch"] = {
            "num_threads": torch.get_num_threads(),
            "num_interop_threads": torch.get_num_interop_threads(),
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "cuda": torch.version.cuda,
            "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        }
    if any(is_gpu(t) for t in targets):
        info["gpu"] = _gpu_info(targets)
    return info


def _gpu_info(targets: Sequence[str]) -> dict[str, Any] | None:
    try:
        if any(parse_target(t)[0] == "torch" and is_gpu(t) for t in targets):
            import torch

            props = torch.cuda.get_device_properties(torch.cuda.current_device())
            return {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                    "capability": f"{props.major}.{props.minor}",
                    "count": torch.cuda.device_count(), "torch_cuda": torch.version.cuda}
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        return {"name": name.decode() if isinstance(name, bytes) else name,
                "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
                "capability": f"{props['major']}.{props['minor']}",
                "count": cupy.cuda.runtime.getDeviceCount(),
                "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
                "driver": cupy.cuda.runtime.driverGetVersion()}
    except Exception as exc:  # a report must not fail on the GPU's description
        return {"name": None, "error": f"{type(exc).__name__}: {exc}"}


def blas_summary(machine: dict[str, Any]) -> str:
    """``"openblas 0.3.31, kernel Haswell, 2 threads (pthreads)"``-style line(s)."""
    parts = []
    for pool in machine.get("threadpools") or []:
        if pool.get("user_api") != "blas":
            continue
        text = f"{pool.get('internal_api')} {pool.get('version')}"
        if pool.get("architecture"):
            text += f", kernel {pool['architecture']}"
        text += f", {pool.get('num_threads')} threads"
        if pool.get("threading_layer"):
            text += f" ({pool['threading_layer']})"
        parts.append(f"{text} [{Path(str(pool.get('filepath'))).name}]")
    return "; ".join(parts) or "unknown (threadpoolctl not installed)"


# ---------------------------------------------------------------------------------------
# the sweep


@dataclass
class Config:
    backends: list[str]
    widths: list[int]
    batches: list[int]
    dtypes: list[str]
    repeat: int = 5
    cases: tuple[str, ...] = ("step", "floor")
    reference: bool = True
    pause: float = 0.2
    min_time: float = 0.05
    max_width: dict[str, int] | None = None
    max_sample_seconds: float | None = None
    time_budget: float | None = None
    extra_points: tuple[tuple[int, int], ...] = ()
    seed: int = 0

    def points(self) -> list[tuple[int, int]]:
        """The grid, cheapest first, then the extra points (also cheapest first)."""
        grid = sorted({(n, m) for n in self.widths for m in self.batches},
                      key=lambda p: (p[0] * p[0] * p[1], p))
        extra = sorted(set(self.extra_points) - set(grid), key=lambda p: (p[0] * p[0] * p[1], p))
        return grid + extra

    def as_dict(self) -> dict[str, Any]:
        return {"backends": self.backends, "widths": self.widths, "batches": self.batches,
                "dtypes": self.dtypes, "repeat": self.repeat, "cases": list(self.cases),
                "reference": self.reference, "pause_s": self.pause, "min_time_s": self.min_time,
                "max_width": self.max_width or {}, "max_sample_seconds": self.max_sample_seconds,
                "time_budget_s": self.time_budget,
                "extra_points": [list(p) for p in self.extra_points], "seed": self.seed,
                "hidden_layers": HIDDEN_LAYERS, "learning_rate": LEARNING_RATE,
                "flops_per_step": "6 * sum_l n[l] * n[l-1] * m"}


def _free_device_memory() -> None:
    gc.collect()
    if "cupy" in sys.modules:
        sys.modules["cupy"].get_default_memory_pool().free_all_blocks()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_sweep(config: Config, *, progress: bool = True, out: Path | None = None,
              command: Sequence[str] = ()) -> dict[str, Any]:
    """Time every case at every point in alternating rounds; return the results dict.

    With ``out``, ``results.json`` is rewritten after each point, so an interrupted
    sweep keeps what it measured.
    """
    from tqdm.auto import tqdm

    targets: dict[str, dict[str, Any]] = {}
    for t in config.backends:
        targets[t] = {"role": "deepnet", "gpu": is_gpu(t),
                      "reference": reference_target(t) if config.reference else None}
    if config.reference:
        for t in config.backends:
            ref = reference_target(t)
            targets.setdefault(ref, {"role": "reference", "gpu": is_gpu(ref), "reference": None})
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": list(command),
        "config": config.as_dict(),
        "targets": targets,
        "machine": machine_info(config.backends),
        "samples": [],
        "skipped": [],
        "calibration": [],
    }
    max_width = {**DEFAULT_MAX_WIDTH, **(config.max_width or {})}
    start = time.perf_counter()
    jobs = [(dtype, p) for dtype in config.dtypes for p in config.points()]
    bar = tqdm(jobs, desc="deepnet bench", unit="point", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    for dtype, (n, m) in bar:
        bar.set_postfix_str(f"{dtype} n={n} m={m}")
        if config.time_budget is not None and time.perf_counter() - start > config.time_budget:
            for t in targets:
                _skip(results, t, n, m, dtype, f"time budget of {config.time_budget:g} s spent")
            continue
        cases = _build_cases(config, results, max_width, n, m, dtype)
        inner = {}
        for key, case in list(cases.items()):
            try:
                inner[key], first = calibrate(case, config.min_time)
            except (MemoryError, RuntimeError) as exc:
                _skip(results, key[0], n, m, dtype, f"{type(exc).__name__}: {exc}",
                      case=key[1])
                del cases[key]
                continue
            results["calibration"].append({"target": key[0], "case": key[1], "n": n, "m": m,
                                           "dtype": dtype, "first_call_s": first,
                                           "inner": inner[key]})
            limit = config.max_sample_seconds
            if limit is not None and first > limit:
                _skip(results, key[0], n, m, dtype,
                      f"one {key[1]} call took {first:.1f} s > --max-sample-seconds {limit:g}",
                      case=key[1])
                del cases[key]
        keys = list(cases)
        for r in range(config.repeat):
            shift = r % len(keys) if keys else 0
            for key in keys[shift:] + keys[:shift]:
                seconds, cpu = sample(cases[key], inner[key], config.pause)
                results["samples"].append({"target": key[0], "case": key[1], "n": n, "m": m,
                                           "dtype": dtype, "round": r, "seconds": seconds,
                                           "cpu_s": cpu, "inner": inner[key]})
        del cases
        _free_device_memory()
        if out is not None:
            write_json(results, out)
    bar.close()
    try:  # libraries loaded during the sweep (e.g. cuBLAS's pools) show up now
        from threadpoolctl import threadpool_info

        results["machine"]["threadpools"] = threadpool_info()
    except ImportError:
        pass
    if hasattr(os, "getloadavg"):
        results["machine"]["loadavg_end"] = list(os.getloadavg())
    results["elapsed_s"] = time.perf_counter() - start
    return results


def _skip(results: dict, target: str, n: int, m: int, dtype: str, why: str,
          case: str | None = None) -> None:
    results["skipped"].append({"target": target, "case": case, "n": n, "m": m, "dtype": dtype,
                               "reason": why})


def _build_cases(config: Config, results: dict, max_width: dict[str, int], n: int, m: int,
                 dtype: str) -> dict[tuple[str, str], Case]:
    cases: dict[tuple[str, str], Case] = {}
    refs = []
    for t in config.backends:
        cap = max_width.get(t, max_width.get(parse_target(t)[0]))
        if cap is not None and n > cap:
            _skip(results, t, n, m, dtype, f"n > {cap} (--max-width {t}={cap})")
            continue
        try:
            for kind, case in deepnet_cases(t, n, m, dtype, config.seed, config.cases).items():
                cases[(t, kind)] = case
        except (MemoryError, RuntimeError) as exc:  # torch's CUDA OOM is a RuntimeError
            _skip(results, t, n, m, dtype, f"{type(exc).__name__}: {exc}")
            continue
        ref = results["targets"][t]["reference"]
        if ref and ref not in refs:
            refs.append(ref)
    for ref in refs:
        try:
            cases[(ref, "step")] = reference_case(ref.removeprefix(REFERENCE_PREFIX), n, m,
                                                  dtype, config.seed)
        except (ImportError, MemoryError, RuntimeError) as exc:
            _skip(results, ref, n, m, dtype, f"{type(exc).__name__}: {exc}")
    return cases


# ---------------------------------------------------------------------------------------
# summaries: medians, per-round ratios, crossovers (pure functions of the results dict)


def _quantiles(values: Sequence[float]) -> tuple[float, float, float]:
    """``(q1, median, q3)``; with fewer than 2 values all three are the value."""
    values = sorted(values)
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def _ratio(num: dict[int, float], den: dict[int, float]) -> float | None:
    """Median over the rounds both have of ``num[r] / den[r]``."""
    rounds = sorted(set(num) & set(den))
    if not rounds:
        return None
    return statistics.median(num[r] / den[r] for r in rounds)


def _by_round(results: dict, field: str = "seconds"
              ) -> dict[tuple[str, str, int, int, str], dict[int, float]]:
    table: dict[tuple, dict[int, float]] = defaultdict(dict)
    for s in results["samples"]:
        if s.get(field) is not None:
            key = (s["target"], s["case"], s["n"], s["m"], s["dtype"])
            table[key][s["round"]] = s[field]
    return table


def summarize(results: dict) -> list[dict[str, Any]]:
    """One row per (dtype, target, n, m) with a step timing.

    Keys: ``dtype, target, role, gpu, n, m, flops, median_s, q1_s, q3_s, iqr_rel, gflops,
    rounds, floor_median_s, floor_gflops, vs_floor, reference, vs_reference, vs_numpy,
    vs_cpu, cpu_per_wall, forward_median_s, backward_median_s``; ``cpu_per_wall`` is the
    process's CPU seconds per wall second during the step (about the threads kept busy).
    Ratios are medians of per-round ratios:
    ``vs_floor = step / floor``, ``vs_reference = step / PyTorch step``, ``vs_numpy =
    NumPy step / step`` (a speedup), ``vs_cpu = fastest CPU deepnet step / step``.
    """
    table = _by_round(results)
    cpu_time = _by_round(results, "cpu_s")
    targets = results["targets"]
    cpu_deepnet = [t for t, v in targets.items() if v["role"] == "deepnet" and not v["gpu"]]
    rows = []
    for (target, case, n, m, dtype), steps in sorted(table.items(), key=_row_order(targets)):
        if case != "step":
            continue
        info = targets.get(target, {"role": "deepnet", "gpu": is_gpu(target), "reference": None})
        q1, med, q3 = _quantiles(list(steps.values()))
        flops = step_flops(layer_dims(n), m)
        floor = table.get((target, "floor", n, m, dtype))
        ref = info.get("reference")
        ref_steps = table.get((ref, "step", n, m, dtype)) if ref else None
        numpy_steps = table.get((BASELINE, "step", n, m, dtype))
        row: dict[str, Any] = {
            "dtype": dtype, "target": target, "role": info["role"], "gpu": info["gpu"],
            "n": n, "m": m, "flops": flops, "median_s": med, "q1_s": q1, "q3_s": q3,
            "iqr_rel": (q3 - q1) / med, "gflops": flops / med / 1e9, "rounds": len(steps),
            "floor_median_s": None, "floor_gflops": None, "vs_floor": None,
            "reference": ref if ref_steps else None, "vs_reference": None,
            "vs_numpy": None, "vs_cpu": None,
        }
        if floor:
            row["floor_median_s"] = statistics.median(floor.values())
            row["floor_gflops"] = flops / row["floor_median_s"] / 1e9
            row["vs_floor"] = _ratio(steps, floor)
        if ref_steps:
            row["vs_reference"] = _ratio(steps, ref_steps)
        if numpy_steps and target != BASELINE:
            row["vs_numpy"] = _ratio(numpy_steps, steps)
        if info["gpu"]:
            cpu = [table[(t, "step", n, m, dtype)] for t in cpu_deepnet
                   if (t, "step", n, m, dtype) in table]
            rounds = set.intersection(*(set(c) for c in cpu)) if cpu else set()
            if rounds:
                best = {r: min(c[r] for c in cpu) for r in rounds}
                row["vs_cpu"] = _ratio(best, steps)
        busy = cpu_time.get((target, case, n, m, dtype))
        row["cpu_per_wall"] = _ratio(busy, steps) if busy else None
        for kind in ("forward", "backward"):
            timing = table.get((target, kind, n, m, dtype))
            row[f"{kind}_median_s"] = statistics.median(timing.values()) if timing else None
        rows.append(row)
    return rows


def _row_order(targets: dict) -> Callable[[Any], tuple]:
    order = {t: i for i, t in enumerate(targets)}

    def key(item: Any) -> tuple:
        target, case, n, m, dtype = item[0]
        return (dtype, n, m, order.get(target, len(order)), target, case)

    return key


def crossover_width(speedups: Iterable[tuple[int, float]]) -> int | None:
    """The smallest width from which the speedup stays above 1 at every larger width.

    ``None`` when it is not above 1 at the largest width measured ("never in this grid").
    """
    pts = sorted(speedups)
    start = None
    for n, s in reversed(pts):
        if s > 1.0:
            start = n
        else:
            break
    return start


def crossovers(rows: Sequence[dict], key: str = "vs_numpy") -> dict[tuple[str, str], dict]:
    """``{(dtype, target): {m: width or None}}`` for the rows that have ``key``."""
    speed: dict[tuple[str, str], dict[int, list[tuple[int, float]]]] = defaultdict(
        lambda: defaultdict(list))
    for row in rows:
        if row.get(key) is not None:
            speed[(row["dtype"], row["target"])][row["m"]].append((row["n"], row[key]))
    return {k: {m: crossover_width(pts) for m, pts in sorted(per_m.items())}
            for k, per_m in speed.items()}


def crossover_sentence(target: str, per_batch: dict[int, int | None],
                       than: str = "NumPy") -> str:
    """``"torch is faster than NumPy from n = 256 at m = 512, from n = 64 at m = 4096."``"""
    found = [f"from n = {w} at m = {m}" for m, w in sorted(per_batch.items()) if w is not None]
    never = [str(m) for m, w in sorted(per_batch.items()) if w is None]
    who = pretty(target)
    if not found and len(never) == 1:
        return f"{who} is never faster than {than} at m = {never[0]} in this grid."
    if not found:
        return f"{who} is never faster than {than} in this grid."
    text = f"{who} is faster than {than} " + ", ".join(found)
    if never:
        text += f"; never in this grid at m = {', '.join(never)}"
    return text + "."


def crossover_map(rows: Sequence[dict]) -> dict[str, list[str]]:
    """The sentences, per dtype: each backend against NumPy, each GPU against the CPU."""
    out: dict[str, list[str]] = defaultdict(list)
    for (dtype, target), per_m in crossovers(rows, "vs_numpy").items():
        out[dtype].append(crossover_sentence(target, per_m))
    for (dtype, target), per_m in crossovers(rows, "vs_cpu").items():
        out[dtype].append(crossover_sentence(target, per_m, "the fastest CPU backend"))
    return dict(out)


# ---------------------------------------------------------------------------------------
# reports: markdown, plot, advice


def format_seconds(s: float) -> str:
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def _fmt(x: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "—" if x is None else f"{x:{spec}}{suffix}"


def markdown_table(rows: Sequence[dict]) -> str:
    head = ("| backend | n | m | time/step (median) | IQR/median | GFLOP/s | floor GFLOP/s "
            "| ÷ floor | ÷ PyTorch | speedup vs NumPy | CPU/wall |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    body = []
    for r in rows:
        body.append(
            f"| {pretty(r['target'])} | {r['n']} | {r['m']} | {format_seconds(r['median_s'])} "
            f"| {r['iqr_rel'] * 100:.1f}% | {r['gflops']:.3g} | {_fmt(r['floor_gflops'], '.3g')} "
            f"| {_fmt(r['vs_floor'])} | {_fmt(r['vs_reference'])} "
            f"| {_fmt(r['vs_numpy'], '.2f', '×')} | {_fmt(r.get('cpu_per_wall'), '.2f')} |")
    return head + "\n".join(body) + "\n"


def _fmt_load(load: Sequence[float] | None) -> str:
    return "unknown" if not load else " ".join(f"{x:.2f}" for x in load)


def render_markdown(results: dict, rows: Sequence[dict] | None = None) -> str:
    rows = summarize(results) if rows is None else rows
    machine = results.get("machine") or {}
    cfg = results["config"]
    gpu = machine.get("gpu") or {}
    env_text = ", ".join(f"{k}={v}" for k, v in (machine.get("env") or {}).items())
    lines = [
        "# deepnet bench",
        "",
        f"- date: {results['created']}; host `{machine.get('hostname')}`; "
        f"{machine.get('cpu')}, {machine.get('cores_usable')} usable cores"
        + (f"; GPU {gpu.get('name')}" if gpu.get("name") else ""),
        f"- Python {machine.get('python')}; "
        + ", ".join(f"{k} {v}" for k, v in (machine.get("versions") or {}).items() if v),
        f"- BLAS: {blas_summary(machine)}",
        f"- load average (1, 5, 15 min) at the start: {_fmt_load(machine.get('loadavg'))}, "
        f"at the end: {_fmt_load(machine.get('loadavg_end'))}",
        f"- environment: {env_text or '(none of the speed-relevant variables set)'}",
        f"- command: `{' '.join(results.get('command') or []) or 'deepnet bench'}`",
        f"- network [n, n, n, n, n, 1] (ReLU, sigmoid output), full batch m, plain GD; "
        f"{cfg['repeat']} alternating rounds, {cfg['pause_s']:g} s pause before each sample; "
        "flops/step = 6·Σ n[l]·n[l-1]·m",
        "- time: median of the rounds (IQR/median the spread); ÷ floor, ÷ PyTorch and "
        "speedup vs NumPy: medians of per-round ratios; ÷ PyTorch compares with native "
        "PyTorch (nn.Sequential + BCEWithLogitsLoss + SGD) on the same device; CPU/wall: "
        "the process's CPU seconds per second of the step (≈ the cores it kept busy; well "
        "under the thread count when other work held the cores).",
        "",
    ]
    sentences = crossover_map(rows)
    for dtype in sorted({r["dtype"] for r in rows}):
        lines += [f"## {dtype}", "", markdown_table([r for r in rows if r["dtype"] == dtype]),
                  "### Crossover map", ""]
        lines += [f"- {s}" for s in sentences.get(dtype, [])] or ["- (no backend to compare)"]
        lines.append("")
    if results.get("skipped"):
        lines += ["## Skipped", ""]
        lines += [f"- {pretty(s['target'])}{' ' + s['case'] if s.get('case') else ''} at "
                  f"n = {s['n']}, m = {s['m']} ({s['dtype']}): {s['reason']}"
                  for s in results["skipped"]]
        lines.append("")
    return "\n".join(lines)


def plot_throughput(results: dict, path: Path, rows: Sequence[dict] | None = None) -> bool:
    """``throughput.png``: GFLOP/s against width, one line per backend and batch size.

    One panel per batch size (a row per dtype); the GEMM floor dashed, native PyTorch
    dotted, and a star where a backend overtakes NumPy. ``False`` without matplotlib.
    """
    try:
        from matplotlib import ticker
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError:
        return False
    rows = summarize(results) if rows is None else rows
    if not rows:
        return False
    dtypes = sorted({r["dtype"] for r in rows})
    batches = sorted({r["m"] for r in rows})
    targets = list(dict.fromkeys(r["target"] for r in rows))
    colors = {t: f"C{i % 10}" for i, t in enumerate(targets)}
    cross = crossovers(rows, "vs_numpy")
    fig = Figure(figsize=(4.6 * len(batches), 3.8 * len(dtypes)), layout="constrained")
    axes = fig.subplots(len(dtypes), len(batches), squeeze=False)
    for i, dtype in enumerate(dtypes):
        for j, m in enumerate(batches):
            ax = axes[i][j]
            for t in targets:
                pts = sorted((r["n"], r) for r in rows
                             if r["target"] == t and r["m"] == m and r["dtype"] == dtype)
                if not pts:
                    continue
                ns = [p[0] for p in pts]
                style = ":" if is_reference(t) else "-"
                ax.plot(ns, [p[1]["gflops"] for p in pts], style, marker="o", ms=4,
                        color=colors[t], label=pretty(t))
                floor = [(n, r["floor_gflops"]) for n, r in pts if r["floor_gflops"]]
                if floor:
                    ax.plot(*zip(*floor), "--", color=colors[t], alpha=0.6, lw=1)
                w = cross.get((dtype, t), {}).get(m)
                if w is not None:
                    g = next(r["gflops"] for n, r in pts if n == w)
                    ax.plot([w], [g], marker="*", ms=14, color=colors[t], mec="black",
                            ls="none")
            widths = sorted({r["n"] for r in rows if r["m"] == m and r["dtype"] == dtype})
            ax.set_xscale("log", base=2)
            ax.set_xticks(widths, labels=[str(w) for w in widths])
            ax.xaxis.set_minor_locator(ticker.NullLocator())
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
            ax.set_xlabel("width n")
            ax.set_ylabel("GFLOP/s")
            ax.set_title(f"m = {m}, {dtype}")
            ax.grid(True, which="both", alpha=0.3)
    handles = [Line2D([], [], color=colors[t], ls=":" if is_reference(t) else "-",
                      marker="o", ms=4, label=pretty(t)) for t in targets]
    handles += [Line2D([], [], color="gray", ls="--", label="GEMM floor (same colour)"),
                Line2D([], [], color="gray", marker="*", ms=12, mec="black", ls="none",
                       label="faster than NumPy from here on")]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4),
               fontsize="small")
    machine = results.get("machine") or {}
    gpu = (machine.get("gpu") or {}).get("name")
    fig.suptitle(f"deepnet training-step throughput — {machine.get('cpu')}"
                 + (f", {gpu}" if gpu else ""), fontsize="medium")
    fig.savefig(path, dpi=110)
    return True


def advise(results: dict, n: int, m: int, dtype: str | None = None) -> str:
    """Which backend is fastest at ``(n, m)`` and by how much, and the crossovers at ``m``."""
    rows = summarize(results)
    dtypes = sorted({r["dtype"] for r in rows})
    if not rows:
        raise ValueError("the results hold no step timings to advise from")
    if dtype is None:
        dtype = "float32" if "float32" in dtypes else dtypes[0]
    if dtype not in dtypes:
        raise ValueError(f"the results hold no {dtype} timings; they hold {', '.join(dtypes)}")
    rows = [r for r in rows if r["dtype"] == dtype]
    measured = sorted({(r["n"], r["m"]) for r in rows})
    pn, pm = min(measured, key=lambda p: (abs(math.log(p[0] / n)) + abs(math.log(p[1] / m)),
                                          p))
    lines = []
    if (pn, pm) != (n, m):
        lines.append(f"(n = {n}, m = {m}) was not measured; the nearest measured point is "
                     f"n = {pn}, m = {pm} (widths {sorted({p[0] for p in measured})}, "
                     f"batches {sorted({p[1] for p in measured})}).")
    here = sorted((r for r in rows if (r["n"], r["m"]) == (pn, pm)), key=lambda r: r["median_s"])
    ours = [r for r in here if r["role"] == "deepnet"]
    best = ours[0] if ours else here[0]
    lines.append(f"At n = {pn}, m = {pm} ({dtype}) the fastest backend is "
                 f"{pretty(best['target'])}: {format_seconds(best['median_s'])} per step, "
                 f"{best['gflops']:.3g} GFLOP/s.")
    for r in ours:
        slower = r["median_s"] / best["median_s"]
        text = (f"  {pretty(r['target'])}: {format_seconds(r['median_s'])}"
                + (f" ({slower:.2f}× slower)" if r is not best else ""))
        if r.get("vs_reference") is not None:
            text += (f"; ÷ {pretty(r['reference'])} = {r['vs_reference']:.2f}")
        lines.append(text)
    for r in here:
        if r["role"] == "reference":
            lines.append(f"  {pretty(r['target'])}: {format_seconds(r['median_s'])}")
    if best.get("vs_numpy") is not None and best["target"] != BASELINE:
        lines.append(f"{pretty(best['target'])} is {best['vs_numpy']:.2f}× faster than NumPy "
                     "here (median of per-round ratios).")
    for (_, target), per_m in crossovers(rows, "vs_numpy").items():
        if pm in per_m:
            lines.append("Crossover: " + crossover_sentence(target, {pm: per_m[pm]}))
    for (_, target), per_m in crossovers(rows, "vs_cpu").items():
        if pm in per_m:
            lines.append("Crossover: " + crossover_sentence(target, {pm: per_m[pm]},
                                                            "the fastest CPU backend"))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# files and the command line


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, np.generic):
        return x.item()
    return str(x)


def write_json(results: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable(results), indent=1) + "\n")
    tmp.replace(path)
    return path


def load_results(out: Path) -> dict:
    path = out / "results.json" if out.is_dir() else out
    if not path.is_file():
        raise FileNotFoundError(f"no saved results at {path}; run `deepnet bench --out {out}` "
                                "first")
    results = json.loads(path.read_text())
    if results.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a deepnet bench results file (schema "
                         f"{results.get('schema')!r}, expected {SCHEMA!r})")
    return results


def write_reports(results: dict, out: Path) -> dict[str, Path]:
    rows = summarize(results)
    files = {"json": write_json(results, out)}
    md = out / "results.md"
    md.write_text(render_markdown(results, rows))
    files["md"] = md
    png = out / "throughput.png"
    if plot_throughput(results, png, rows):
        files["png"] = png
    return files


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers; got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers; got {text!r}")
    return values


def _str_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _points(text: str) -> list[tuple[int, int]]:
    try:
        pts = [tuple(int(x) for x in p.lower().split("x")) for p in _str_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected points like 8192x8192,4096x8192; got {text!r}") from None
    if any(len(p) != 2 or min(p) < 1 for p in pts):
        raise argparse.ArgumentTypeError(f"expected points like 8192x8192; got {text!r}")
    return pts  # type: ignore[return-value]


def _caps(text: str) -> dict[str, int]:
    caps = {}
    for item in _str_list(text):
        name, _, value = item.rpartition("=")
        if not name or not value.isdigit():
            raise argparse.ArgumentTypeError(
                f"expected BACKEND=WIDTH[,...] (e.g. array_api_strict=256); got {item!r}")
        caps[name] = int(value)
    return caps


def default_backends() -> list[str]:
    """The CPU backends that load here, and cupy and torch:cuda where a GPU is present."""
    from deepnet.backend import get_backend
    from deepnet.errors import BackendError

    found = []
    for label in (*CPU_TARGETS, *GPU_TARGETS):
        try:
            get_backend(*parse_target(label))
        except BackendError:
            continue
        found.append(label)
    return found


def build_parser(prog: str = "deepnet bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Time deepnet's training step on each backend against the GEMM floor and "
                    "native PyTorch, over widths × batch sizes; write results.json, results.md "
                    "and throughput.png, and print the table and the crossover map.")
    p.add_argument("--backends", type=_str_list, default=None,
                   help="comma-separated: numpy, array_api_strict, torch, torch:cuda, cupy "
                        "(default: those that load here)")
    p.add_argument("--widths", type=_int_list, default=list(DEFAULT_WIDTHS),
                   help="layer widths n (default 64,256,1024)")
    p.add_argument("--batches", type=_int_list, default=list(DEFAULT_BATCHES),
                   help="batch sizes m (default 64,512,4096)")
    p.add_argument("--points", type=_points, default=[],
                   help="extra (n, m) points beyond the grid, run last, e.g. 8192x8192")
    p.add_argument("--dtype", type=_str_list, default=None,
                   help="float32 (default), float64, or both comma-separated")
    p.add_argument("--repeat", type=int, default=5, help="alternating rounds (default 5)")
    p.add_argument("--cases", type=_str_list, default=["step", "floor"],
                   help="deepnet cases per backend: step, floor, forward, backward "
                        "(default step,floor)")
    p.add_argument("--no-reference", action="store_true", help="skip native PyTorch")
    p.add_argument("--pause", type=float, default=0.2,
                   help="seconds of sleep before each sample, so thread pools go idle (0.2)")
    p.add_argument("--min-time", type=float, default=0.05,
                   help="each sample repeats the call until it lasts this long (0.05 s)")
    p.add_argument("--max-width", type=_caps, default={},
                   help="per-backend width caps, e.g. array_api_strict=256 (the default cap)")
    p.add_argument("--max-sample-seconds", type=float, default=None,
                   help="drop a case whose first call takes longer than this")
    p.add_argument("--time-budget", type=float, default=None,
                   help="seconds; points not started by then are skipped and reported")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("bench-results"),
                   help="output folder (default bench-results/)")
    p.add_argument("--advise", nargs=2, type=int, metavar=("N", "M"),
                   help="answer for width N and batch M from the saved results in --out")
    p.add_argument("--render", action="store_true",
                   help="re-write results.md and throughput.png from the saved results.json")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """The ``deepnet bench`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    dtypes = args.dtype or None
    if args.advise or args.render:
        try:
            results = load_results(args.out)
            if args.render:
                files = write_reports(results, args.out)
                print("wrote " + ", ".join(str(f) for f in files.values()))
            if args.advise:
                print(advise(results, *args.advise, dtype=dtypes[0] if dtypes else None))
        except (FileNotFoundError, ValueError) as exc:
            print(f"deepnet bench: {exc}", file=sys.stderr)
            return 1
        return 0

    from deepnet.backend import DTYPE_NAMES, get_backend
    from deepnet.errors import BackendError

    dtypes = dtypes or ["float32"]
    bad = [d for d in dtypes if d not in DTYPE_NAMES]
    bad_cases = [c for c in args.cases if c not in DEEPNET_CASES]
    if bad or bad_cases or args.repeat < 1:
        parser.error(f"--dtype must be among {', '.join(DTYPE_NAMES)} (got {dtypes}); --cases "
                     f"among {', '.join(DEEPNET_CASES)} (got {args.cases}); --repeat >= 1 "
                     f"(got {args.repeat})")
    backends = args.backends or default_backends()
    for label in backends:
        try:
            get_backend(*parse_target(label))
        except BackendError as exc:
            parser.error(f"--backends: {label!r} cannot run here: {exc}")
    reference = not args.no_reference
    if reference:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("deepnet bench: torch is not installed; no PyTorch reference",
                  file=sys.stderr)
            reference = False
    config = Config(
        backends=list(dict.fromkeys(backends)), widths=args.widths, batches=args.batches,
        dtypes=dtypes, repeat=args.repeat, cases=tuple(dict.fromkeys(args.cases)),
        reference=reference, pause=args.pause, min_time=args.min_time,
        max_width=args.max_width, max_sample_seconds=args.max_sample_seconds,
        time_budget=args.time_budget, extra_points=tuple(args.points), seed=args.seed)
    command = ["deepnet", "bench", *(sys.argv[1:] if argv is None else argv)]
    results = run_sweep(config, progress=not args.no_progress, out=args.out, command=command)
    files = write_reports(results, args.out)
    rows = summarize(results)
    sentences = crossover_map(rows)
    for dtype in sorted({r["dtype"] for r in rows}):
        print(f"\n{dtype}\n")
        print(markdown_table([r for r in rows if r["dtype"] == dtype]))
        print("\n".join(sentences.get(dtype, [])))
    if results["skipped"]:
        print(f"\n{len(results['skipped'])} case(s) skipped; see {files['md']}")
    print("\nwrote " + ", ".join(str(f) for f in files.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
