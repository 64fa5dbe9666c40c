"""Kernel hooks: what a library's arrays allow beyond the standard's guarantees.

Part of the backend layer (as ``deepnet.backend.fused`` is): the kernels stay standard and ask
here where a library needs another operand or formulation — a 0-d constant instead of a
Python scalar, NumPy's full-size zeros while they fit in cache, a dot product for a sum
of squares, wrap-around integer arithmetic. Each choice is measured
(benchmarks/gpu_kernels.py) and every formulation is tested on every backend
(tests/test_kernel_forms.py, tests/test_dropout.py).
"""

from __future__ import annotations

import contextlib
import importlib

import numpy as np

from deepnet.backend import _OUT_LIBRARY, Array, _library_of, array_namespace, device_label


def integers_wrap(x: Array) -> bool:
    """Whether ``x``'s library does uint32 arithmetic modulo 2^32 (NumPy, CuPy).

    The standard leaves integer overflow unspecified; the dropout hash takes a shorter
    path where wrap-around is known, and an overflow-free int64 path elsewhere (torch
    has no uint32 arithmetic; array-api-strict, the referee, takes the portable one).
    """
    return _library_of(x) in ("numpy", "cupy")


def prefers_fewer_kernels(x: Array) -> bool:
    """Whether a kernel that does more per element beats several simple ones for ``x``.

    CuPy and torch: each operation is a launch (on a GPU, several µs whatever its size),
    and their transcendental kernels are vectorized alike. NumPy (and array-api-strict)
    vectorize only some ufuncs (``logaddexp`` is a scalar loop there). For kernels with
    two standard formulations; both are tested on every backend.
    """
    return _library_of(x) in ("cupy", "torch")


def ignore_overflow(x: Array) -> contextlib.AbstractContextManager:
    """A context in which an overflow to ``inf`` in ``x``'s library does not warn.

    For kernels whose result is exact when an intermediate overflows (``1/(1+inf)``
    is the ``0`` it should be). Only NumPy (and array-api-strict, NumPy underneath)
    warn; elsewhere a no-op.
    """
    if _library_of(x) in ("numpy", "array_api_strict"):
        return np.errstate(over="ignore")
    return contextlib.nullcontext()


_CONSTANTS: dict[tuple, Array] = {}


def constant(value: float, like: Array) -> Array:
    """A 0-d array holding ``value`` in ``like``'s dtype, on its device (made once).

    For operands the standard takes only as arrays on some libraries:
    array-api-compat turns a Python scalar given to torch's ``maximum`` into a new tensor
    on every call, a host-to-device copy and a stream synchronization on CUDA; CuPy's
    ``clip`` goes through a generic wrapper that reads boolean masks back to the host.
    ``maximum(x, constant(0.0, x))`` is one kernel everywhere. Never write into it.
    """
    key = (type(like), like.device, like.dtype, float(value))
    try:
        c = _CONSTANTS.get(key)
    except TypeError:  # a device or dtype object that does not hash
        key = (type(like), device_label(like.device), str(like.dtype), float(value))
        c = _CONSTANTS.get(key)
    if c is None:
        xp = array_namespace(like)
        c = _CONSTANTS[key] = xp.full((), value, dtype=like.dtype, device=like.device)
    return c


#: NumPy's maximum against a full array of zeros beats the maximum against a 0-d zero
#: while both operands stay in the cache: 0.71-0.78x the time for float32 Z of 16-512
#: KiB, 1.5-4x *slower* from 1 MiB up, no gain for float64 (benchmarks/gpu_kernels.py).
FULL_ZEROS_MAX_BYTES = 1 << 19


def relu_floor(Z: Array, zeros: Array | None) -> Array:
    """What ``relu`` takes the maximum of ``Z`` against: the workspace's ``zeros`` where
    that measurably helps (NumPy, float32, ``Z`` within :data:`FULL_ZEROS_MAX_BYTES`),
    else a 0-d zero on ``Z``'s device (one read of ``Z`` only: no zeros array is read on
    a GPU)."""
    if zeros is not None and type(Z) is np.ndarray and Z.nbytes <= FULL_ZEROS_MAX_BYTES \
            and Z.dtype == np.float32:
        return zeros
    return constant(0.0, Z)


def squared_norm(x: Array) -> Array:
    """``Σ x²`` over every entry of ``x``, as a 0-d array on its device.

    One BLAS dot product where the library has one (NumPy, CuPy, torch): no temporary
    the size of ``x``, one kernel on a GPU (``benchmarks/gpu_kernels.py`` times it against
    ``sum(x**2)`` on NumPy and torch's CPU). The standard's ``vecdot`` elsewhere.
    """
    lib = _library_of(x)
    xp = array_namespace(x)
    flat = xp.reshape(x, (-1,))
    if lib in _OUT_LIBRARY:
        return importlib.import_module(_OUT_LIBRARY[lib]).dot(flat, flat)
    return xp.vecdot(flat, flat)


__all__ = [
    "FULL_ZEROS_MAX_BYTES",
    "constant",
    "ignore_overflow",
    "integers_wrap",
    "prefers_fewer_kernels",
    "relu_floor",
    "squared_norm",
]
