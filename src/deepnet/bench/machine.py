"""The machine a run was measured on: host, CPU, GPU, Python, library versions, the BLAS
kernel and thread pools, and the environment variables that change speed."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepnet.bench.cases import is_gpu, parse_target

__all__ = ["blas_summary", "machine_info", "speed_env"]

ENV_PREFIXES = ("OPENBLAS_", "OMP_", "MKL_", "GOMP_", "KMP_", "DEEPNET_", "CUPY_",
                "CUBLAS_", "TORCH_", "NVIDIA_TF32")
ENV_NAMES = ("CUDA_VISIBLE_DEVICES", "PYTORCH_CUDA_ALLOC_CONF", "MALLOC_ARENA_MAX")
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
        root = Path(__file__).resolve().parents[3]
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

