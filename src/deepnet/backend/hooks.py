"""The ``out=`` hook and the data path's hooks: buffer reuse and row gathers where the
library offers them."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from deepnet.backend.host import Array, _library_of, _same_device, to_numpy
from deepnet.backend.libraries import Backend, array_namespace

_OUT_LIBRARY = {"numpy": "numpy", "cupy": "cupy", "torch": "torch"}


def out_supported(x: Array) -> bool:
    """Whether :func:`into` can write into ``x`` (NumPy, CuPy and torch arrays)."""
    ok = _OUT_OK.get(type(x))
    if ok is None:
        ok = _OUT_OK[type(x)] = _library_of(x) in _OUT_LIBRARY
    return ok


_OUT_OK: dict[type, bool] = {}


def into(out: Array | None, name: str, *args: Any) -> Array:
    """``xp.<name>(*args)``, written into ``out`` where the library offers ``out=``.

    The one hook for buffer reuse. NumPy, CuPy and torch all accept ``out=`` on
    ``matmul`` and the elementwise functions, so a kernel written once can fill a
    per-network workspace there (no allocation, no page faults) and allocate where the
    library has no such argument (array-api-strict) or where ``out`` is ``None``.
    Always use the return value: it is ``out`` itself only when the write happened.
    """
    if out is not None:
        key = (type(out), name)
        native: Any = _NATIVE_OUT.get(key)
        if native is None:
            lib = _library_of(out)
            native = False
            if lib in _OUT_LIBRARY:
                native = getattr(importlib.import_module(_OUT_LIBRARY[lib]), name)
            _NATIVE_OUT[key] = native
        if native is not False:
            return native(*args, out=out)
    return getattr(array_namespace(*args), name)(*args)


_NATIVE_OUT: dict[tuple[type, str], Any] = {}


def gather_rows(x: Array, idx: Array, out: Array | None = None) -> Array:
    """``x[idx]`` along axis 0 — the rows ``idx`` of an example-major array — written into
    ``out`` where the library allows it (the data path's hook).

    NumPy's ``take`` with ``mode="wrap"`` skips the bounds pass that ``"raise"`` buffers
    for (the indices come from deepnet's own permutation); torch's CPU tensors are
    gathered through their shared NumPy views with the same ``take`` rather than
    ``index_select``.
    """
    lib = _library_of(x)
    if out is not None and lib == "numpy":
        return np.take(x, idx, axis=0, out=out, mode="wrap")
    if out is not None and lib == "torch":
        if x.device.type == "cpu":
            np.take(x.numpy(), idx.numpy(), axis=0, out=out.numpy(), mode="wrap")
            return out
        return importlib.import_module("torch").index_select(x, 0, idx, out=out)
    if out is not None and lib == "cupy":
        return importlib.import_module("cupy").take(x, idx, axis=0, out=out)
    return array_namespace(x).take(x, idx, axis=0)


def is_row_major(x: Array) -> bool:
    """Whether ``x``'s rows are contiguous in memory (C order), where the library says;
    array-api-strict has no memory layout and answers ``True``."""
    lib = _library_of(x)
    if lib in ("numpy", "cupy"):
        return bool(x.flags.c_contiguous)
    if lib == "torch":
        return bool(x.is_contiguous())
    return True


def row_major(x: Array) -> Array:
    """``x`` with contiguous rows: ``x`` itself where it already is, else one copy."""
    if is_row_major(x):
        return x
    lib = _library_of(x)
    if lib in ("numpy", "cupy"):
        return importlib.import_module(lib).ascontiguousarray(x)
    return x.contiguous()  # torch


def like(result: Array, reference: Any) -> Array:
    """``result`` as an array of ``reference``'s library, on ``reference``'s device.

    Outputs follow inputs (as scikit-learn's Array API support does): a NumPy array,
    memory map or list in, a NumPy array out; a torch tensor in, a torch tensor on its
    device out. The move, where one is needed, goes through the host explicitly.
    """
    lib = _library_of(reference)
    if lib is None or lib == "numpy":
        return to_numpy(result)
    if lib == _library_of(result) and _same_device(result.device, reference.device):
        return result
    host = to_numpy(result)
    if lib == "cupy":
        cupy = importlib.import_module("cupy")
        with reference.device:
            return cupy.asarray(host)
    namespace = array_namespace(reference)
    return namespace.asarray(host, device=reference.device)


def free_device_memory(backend: Backend) -> int | None:
    """Bytes the backend's GPU can still hand out, or ``None`` for a host backend.

    The driver's free memory plus what the library's caching allocator holds unused
    (CuPy's memory pool, torch's reserved but unallocated blocks), which it hands out
    first.
    """
    lib = backend.lib
    if backend.name == "cupy" and lib is not None:
        with lib.cuda.Device(backend.device.id):
            free, _ = lib.cuda.runtime.memGetInfo()
        return int(free) + int(lib.get_default_memory_pool().free_bytes())
    if backend.name == "torch" and lib is not None and backend.device.type == "cuda":
        free, _ = lib.cuda.mem_get_info(backend.device)
        cached = lib.cuda.memory_reserved(backend.device) - lib.cuda.memory_allocated(
            backend.device)
        return int(free) + int(cached)
    return None


__all__ = ["free_device_memory", "gather_rows", "into", "is_row_major", "like", "out_supported",
           "row_major"]
