"""Argument checks shared by the public entry points; each raises before any work starts.

Every message says what was expected and what was received.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Set
from numbers import Integral, Real
from typing import Any

from deepnet import memory
from deepnet.backend import Array, Backend, array_namespace, host_array
from deepnet.errors import InputError

#: The largest layer size: cuBLAS and most BLAS libraries index matrix dimensions with
#: 32-bit integers, so no backend can multiply a larger ``W[l]``.
MAX_UNITS = 2**31 - 1


def positive_int(value: Any, what: str) -> int:
    """``value`` as an int ≥ 1 (bools refused; NumPy's timedelta64, which registers as an
    integer type, too)."""
    refused = isinstance(value, bool) or not isinstance(value, Integral)
    if not refused:
        try:
            number = int(value)
        except (TypeError, ValueError, OverflowError):  # NaT, and other "integers"
            refused = True
    if refused or number < 1 or number != value:
        raise InputError(f"{what} must be a positive integer; got {_short(value)}")
    return number


def boolean(value: Any, what: str) -> bool:
    """``value`` as a bool: ``True``/``False`` (NumPy's ``bool_`` too). A string such as
    ``"no"`` is refused rather than read as true."""
    import numpy

    if isinstance(value, (bool, numpy.bool_)):
        return bool(value)
    raise InputError(f"{what} must be True or False; got {_short(value)}")


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (a fuzzed argument can be huge)."""
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ of a user's object
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def real_number(
    value: Any, what: str, *, low: float | None = None, high: float | None = None,
    low_open: bool = False, high_open: bool = False,
) -> float:
    """``value`` as a finite float inside the given bounds."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InputError(f"{what} must be a finite real number; got {_short(value)}")
    try:
        value = float(value)
    except (OverflowError, ValueError, TypeError):  # e.g. an int beyond the float range
        raise InputError(
            f"{what} must be a finite real number; got {_short(value)}, beyond the range "
            "of a float"
        ) from None
    if not math.isfinite(value):
        raise InputError(f"{what} must be a finite real number; got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise InputError(f"{what} must be {'>' if low_open else '>='} {low}; got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise InputError(f"{what} must be {'<' if high_open else '<='} {high}; got {value!r}")
    return value


def layer_dims(dims: Any) -> tuple[int, ...]:
    """``[n0, n1, ..., nL]``: at least two positive integers."""
    if (isinstance(dims, (str, bytes, Mapping, Set)) or not hasattr(dims, "__len__")
            or not hasattr(dims, "__iter__")):
        raise InputError(
            f"layer_dims must be a list of layer sizes [n0, n1, ..., nL]; got {_short(dims)}"
        )
    try:
        dims = list(dims)
    except Exception as exc:  # an array-like whose iteration fails (e.g. a 0-d array)
        raise InputError(
            f"layer_dims must be a list of layer sizes [n0, n1, ..., nL]; got {_short(dims)} "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if len(dims) < 2:
        raise InputError(
            f"layer_dims needs at least two sizes (input and output), [n0, ..., nL]; "
            f"got {_short(dims)}"
        )
    dims = tuple(positive_int(n, f"layer_dims[{i}]") for i, n in enumerate(dims))
    for i, n in enumerate(dims):
        if n > MAX_UNITS:
            raise InputError(
                f"layer_dims[{i}] = {n} is larger than {MAX_UNITS} (2**31 - 1), the largest "
                "matrix dimension BLAS and cuBLAS index"
            )
    return dims


def output_units(output: str, nL: int) -> None:
    """A softmax spreads probability over ``nL >= 2`` classes: with one unit its output is
    always 1, its cost always 0, and nothing would ever be learned."""
    if output == "softmax" and nL < 2:
        raise InputError(
            f"a softmax output needs nL >= 2 units (one per class); got nL = {nL}. For two "
            "classes with one unit use output='sigmoid'"
        )


def parameter_count(dims: tuple[int, ...]) -> int:
    """``Σ n[l] (n[l-1] + 1)``: the entries of every ``W[l]`` and ``b[l]``."""
    return sum(dims[l] * (dims[l - 1] + 1) for l in range(1, len(dims)))


def network_memory(dims: tuple[int, ...], dtype_name: str, backend: Backend) -> None:
    """Refuse (``InputError``) a network whose making would not fit in the memory available
    now, before anything is allocated (see :mod:`deepnet.memory` for the estimate)."""
    need = memory.network_peak(dims, dtype_name, backend)
    n = parameter_count(dims)
    memory.require(need, backend, f"layer_dims {_short(list(dims))} ({n:,} parameters as "
                   f"{dtype_name})")


def pass_memory(dims: tuple[int, ...], m: int, dtype_name: str, backend: Backend, what: str,
                *, extra: int = 0, dropout: bool = False, backward: bool = False) -> None:
    """Refuse (``InputError``) a forward (or backward) pass over ``m`` examples, plus
    ``extra`` bytes, that would not fit in the memory available now: before any of it is
    allocated, rather than a ``MemoryError`` midway or the OOM killer."""
    need = memory.pass_bytes(dims, m, dtype_name, dropout=dropout, backward=backward) + extra
    if need < memory.SMALL_PASS:
        return
    memory.require(memory.Need(0, need), backend,
                   f"{what} on {m:,} examples through layer_dims {_short(list(dims))} "
                   f"({dtype_name})",
                   "pass fewer examples at a time (predict and evaluate take batch_size=)")


@contextlib.contextmanager
def allocation(dims: tuple[int, ...], dtype_name: str) -> Iterator[None]:
    """Turn an out-of-memory failure while making ``dims``' parameters into an InputError.

    NumPy and CuPy raise ``MemoryError`` (CuPy's ``OutOfMemoryError`` is one), torch its
    ``OutOfMemoryError``; either way nothing was made and the message says how much was
    asked for.
    """
    try:
        yield
    except Exception as exc:
        if not (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"):
            raise
        n = parameter_count(dims)
        size = n * (4 if dtype_name == "float32" else 8)
        raise InputError(
            f"layer_dims {_short(list(dims))} has {n:,} parameters ({size / 2**30:,.2f} GiB "
            f"as {dtype_name}), which do not fit in the memory left here "
            f"({type(exc).__name__}: {exc}); use smaller layers"
        ) from exc


def all_finite(x: Array, what: str) -> None:
    """Refuse NaN or inf in ``x``: one read (a sum: NaN and inf propagate through it, and
    finite numbers only overflow it rarely), no temporary as large as ``x``; only a sum
    that is not finite is looked at value by value."""
    xp = array_namespace(x)
    if not xp.isdtype(x.dtype, "real floating"):
        return
    with _quiet(x):
        if bool(xp.isfinite(xp.sum(x))):
            return
    bad = 0  # counted a block of rows at a time: still no full-size temporary
    n = x.shape[0] if x.ndim else 1
    step = max(1, 2**22 // max(1, math.prod(x.shape[1:])))
    for start in range(0, n, step):
        block = x[start:min(start + step, n), ...] if x.ndim else x  # strict: no slice
        bad += int(xp.sum(xp.astype(~xp.isfinite(block), xp.int64)))  # past the end
    if bad:
        name = dtype_name(x.dtype)
        hint = "" if name == "float64" else (
            f" (as {name}; values beyond ±{xp.finfo(x.dtype).max:.3g} become inf when "
            "converted: scale the data or use dtype='float64')")
        raise InputError(f"{what} must be finite; it holds {bad} NaN or inf value(s){hint}")


def _quiet(x: Array) -> contextlib.AbstractContextManager:
    """NumPy (and array-api-strict) warn when a sum overflows; here that is expected."""
    import numpy

    if type(x).__module__.split(".")[0] in ("numpy", "array_api_strict"):
        return numpy.errstate(over="ignore", invalid="ignore")
    return contextlib.nullcontext()


def parameters_finite(net: Any) -> bool:
    """Whether every parameter of ``net`` is finite (one read back: a sum per parameter,
    settled value by value only when a sum is not finite)."""
    xp = net.xp
    params = list(net._params.values())
    if bool(xp.all(xp.stack([xp.isfinite(xp.sum(v)) for v in params]))):
        return True
    return all(bool(xp.all(xp.isfinite(v))) for v in params)


def dtype_name(dtype: Any) -> str:
    """``float32``, ``int64``...: the short name of any library's dtype."""
    name = getattr(dtype, "name", None)
    if not isinstance(name, str):
        name = getattr(dtype, "__name__", None) or str(dtype)
    return str(name).rsplit(".", 1)[-1]


def real_dtype(dtype: Any, what: str, values: Any = None) -> None:
    """Refuse a NumPy dtype that is not bool, integer or real floating (``values``: the
    array, for a message that says what an object array holds)."""
    from deepnet.backend import _check_dtype_kind

    _check_dtype_kind(dtype.kind, dtype, what, values)


def shape_of(x: Any, what: str) -> tuple[int, ...]:
    try:
        shape = getattr(x, "shape", None)
    except Exception:  # a property that raises
        shape = None
    if shape is None:
        if isinstance(x, (list, tuple)):
            return tuple(host_array(x, what).shape)
        raise InputError(f"{what} must be an array; got {type(x).__name__}")
    try:
        dims = tuple(shape)
        if not all(isinstance(s, Integral) and not isinstance(s, bool) for s in dims):
            raise TypeError("not integers")
        return tuple(int(s) for s in dims)
    except Exception:
        raise InputError(
            f"{what} must be an array with a shape of integers; got {type(x).__name__} "
            f"with shape {_short(shape)}"
        ) from None


__all__ = [
    "MAX_UNITS", "all_finite", "allocation", "boolean", "dtype_name", "layer_dims",
    "network_memory", "output_units", "parameter_count", "parameters_finite", "pass_memory",
    "positive_int",
    "real_dtype", "real_number", "shape_of",
]
