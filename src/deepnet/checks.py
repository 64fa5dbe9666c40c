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
from deepnet.backend import Array, Backend, array_namespace, device_label, host_array
from deepnet.errors import InputError, ShapeError

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
        top = xp.finfo(x.dtype).max
        raise InputError(
            f"{what} must be finite; it holds {bad} NaN or inf value(s) (as "
            f"{dtype_name(x.dtype)}; values beyond ±{top:.3g} become inf when converted: "
            "scale the data or use dtype='float64')"
        )


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


def features(backend: Backend, X: Any, n0: int, dtype: Any, what: str = "X") -> Array:
    """``X`` of shape ``(n0, m)`` on ``backend`` as ``dtype``, finite, ``m ≥ 1``."""
    feature_shape(X, n0, what)
    X = backend.asarray(X, dtype, what=what)
    all_finite(X, what)
    return X


def feature_shape(X: Any, n0: int, what: str = "X") -> tuple[int, int]:
    """The shape ``(n0, m)`` of ``X``, ``m ≥ 1``; a ShapeError saying what went wrong."""
    shape = _shape_of(X, what)
    if len(shape) != 2:
        hint = f" (one example? pass X.reshape({n0}, 1))" if shape == (n0,) else ""
        raise ShapeError(
            f"{what} must be 2-D with shape (n0, m) = ({n0}, m); got {len(shape)}-D shape "
            f"{shape}{hint}"
        )
    if shape[0] != n0:
        hint = " Samples go in columns: pass X.T?" if shape[1] == n0 else ""
        raise ShapeError(f"{what} must have shape (n0, m) = ({n0}, m); got {shape}.{hint}")
    if shape[1] == 0:
        raise ShapeError(f"{what} holds no examples: shape {shape}; need m >= 1 columns")
    return shape[0], shape[1]


def real_dtype(dtype: Any, what: str) -> None:
    """Refuse a NumPy dtype that is not bool, integer or real floating."""
    from deepnet.backend import _check_dtype_kind

    _check_dtype_kind(dtype.kind, dtype, what)


def _shape_of(x: Any, what: str) -> tuple[int, ...]:
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


def output_activations(
    backend: Backend, AL: Any, *, output: str, nL: int, dtype: Any, what: str = "AL"
) -> Array:
    """``A[L]`` of shape ``(nL, m)``, ``m ≥ 1``, finite; probabilities for sigmoid/softmax."""
    shape = _shape_of(AL, what)
    if len(shape) != 2 or shape[0] != nL:
        raise ShapeError(f"{what} must have shape (nL, m) = ({nL}, m); got {shape}")
    if shape[1] == 0:
        raise ShapeError(f"{what} holds no examples: shape {shape}; need m >= 1 columns")
    AL = backend.asarray(AL, dtype, what=what)
    all_finite(AL, what)
    if output in ("sigmoid", "softmax"):
        xp = backend.xp
        if bool(xp.any(AL < 0.0)) or bool(xp.any(AL > 1.0)):
            lo, hi = float(xp.min(AL)), float(xp.max(AL))
            raise InputError(
                f"{what} of a {output} output are probabilities in [0, 1]; got values from "
                f"{lo} to {hi} (pass the A[L] that net.forward returned)"
            )
    return AL


def caches(
    backend: Backend, caches: Any, *, dims: tuple[int, ...], m: int, dtype: Any,
    params: Mapping[str, Array] | None = None, AL: Array | None = None,
    what: str = "caches",
) -> list:
    """The list of ``L`` caches that ``DeepNet.forward`` made for a batch of ``m`` examples.

    Each entry is ``((A_prev, W, b), Z, A), D``: ``A_prev (n[l-1], m)``, ``W (n[l],
    n[l-1])``, ``b (n[l], 1)``, ``Z`` and ``A (n[l], m)`` (``Z`` may be ``None`` below the
    output layer), ``D`` a dropout mask ``(n[l], m)`` or ``None``; every array of the
    network's backend, device and dtype.

    With ``params`` (the network's live parameters) each cache's ``W`` and ``b`` must be
    those very arrays: caches of another network, or made before ``set_params``, are
    refused. With ``AL`` (checked) the output layer's cached ``A[L]`` must be it (or equal
    it): caches of another batch are refused.
    """
    L = len(dims) - 1
    origin = "the list that net.forward(X) returned for the same X"
    if not isinstance(caches, list) or len(caches) != L:
        got = type(caches).__name__ + (
            f" of length {len(caches)}" if isinstance(caches, (list, tuple)) else "")
        raise InputError(f"{what} must be the list of L = {L} caches that forward "
                         f"returned; got {got}")
    for l, entry in enumerate(caches, start=1):
        where = f"{what}[{l - 1}]"
        ok = (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], tuple)
              and len(entry[0]) == 3 and isinstance(entry[0][0], tuple)
              and len(entry[0][0]) == 3)
        if not ok:
            raise InputError(
                f"{where} is not a cache of DeepNet.forward (((A_prev, W, b), Z, A), D); "
                f"pass {origin}"
            )
        (A_prev, W, b), Z, A = entry[0]
        D = entry[1]
        expected = {
            "A_prev": (A_prev, (dims[l - 1], m)), "W": (W, (dims[l], dims[l - 1])),
            "b": (b, (dims[l], 1)), "Z": (Z, (dims[l], m)), "A": (A, (dims[l], m)),
            "D": (D, (dims[l], m)),
        }
        for name, (x, shape) in expected.items():
            if x is None and (name == "D" or (name == "Z" and l < L)):
                continue
            if x is None or not backend.owns(x):
                raise InputError(
                    f"{where}: {name} is not an array of the network's backend "
                    f"{backend.label!r} (got {type(x).__name__}); pass {origin}"
                )
            if device_label(x.device) != device_label(backend.device):
                raise InputError(
                    f"{where}: {name} is on device {device_label(x.device)!r}, the network "
                    f"on {backend.label!r}; pass {origin}"
                )
            got = tuple(x.shape)
            if got != shape:
                raise ShapeError(
                    f"{where}: {name} has shape {got}, expected {shape} for layer {l} and "
                    f"m = {m} examples; pass {origin}"
                )
            if x.dtype != dtype:
                raise InputError(
                    f"{where}: {name} has dtype {x.dtype}, the network {dtype}; pass {origin}"
                )
        if l == L and D is not None:
            raise InputError(f"{where}: the output layer has no dropout mask; pass {origin}")
        if params is not None and (W is not params[f"W{l}"] or b is not params[f"b{l}"]):
            raise InputError(
                f"{where} holds a W{l} and b{l} that are not this network's parameters: the "
                "caches come from another network, or from before set_params; pass "
                f"{origin} of this network"
            )
    if AL is not None:
        cached = caches[-1][0][2]
        if cached is not AL and not bool(backend.xp.all(cached == AL)):
            raise InputError(
                f"AL is not the A[L] that {what} hold: the caches come from another batch "
                f"(or another AL); pass the AL and the {what} of one net.forward(X) call"
            )
    return caches


def labels(
    backend: Backend, Y: Any, *, output: str, nL: int, m: int, dtype: Any, what: str = "Y"
) -> Array:
    """``Y`` in the canonical ``(nL, m)`` float layout for the loss implied by ``output``.

    sigmoid: ``(nL, m)`` (or ``(m,)`` when ``nL == 1``) with values in [0, 1];
    softmax: one-hot ``(nL, m)`` or integer class labels ``(m,)`` in ``0..nL-1``;
    linear: ``(nL, m)`` (or ``(m,)`` when ``nL == 1``), finite.
    """
    from deepnet.losses import one_hot

    shape = _shape_of(Y, what)
    xp = backend.xp
    if output == "softmax" and len(shape) == 1:
        if shape[0] != m:
            raise ShapeError(f"{what} has {shape[0]} labels but X has m = {m} examples")
        Yd = backend.asarray(Y, None, what=what)
        if not xp.isdtype(Yd.dtype, "integral"):
            if not xp.isdtype(Yd.dtype, "real floating"):
                raise InputError(f"{what} class labels must be integers; got dtype {Yd.dtype}")
            all_finite(Yd, what)
            if not bool(xp.all(Yd == xp.round(Yd))):
                raise InputError(f"{what} class labels must be whole numbers 0..{nL - 1}")
        # the range is checked before the cast to int64: a float label of 1e19 has no
        # int64 value
        if bool(xp.any(Yd < 0)) or bool(xp.any(Yd >= nL)):
            lo, hi = xp.min(Yd), xp.max(Yd)
            lo, hi = (int(lo), int(hi)) if xp.isdtype(Yd.dtype, "integral") else (
                f"{float(lo):g}", f"{float(hi):g}")
            raise InputError(
                f"{what} class labels must lie in 0..{nL - 1} (the softmax has nL = {nL} "
                f"units); got labels from {lo} to {hi}"
            )
        return one_hot(xp.astype(Yd, xp.int64), nL, dtype)
    if len(shape) == 1 and nL == 1:
        shape = (1, shape[0])
        Y = backend.asarray(Y, dtype, what=what)
        Y = xp.reshape(Y, shape)
    if len(shape) != 2 or shape != (nL, m):
        kind = {
            "sigmoid": "0/1 labels",
            "softmax": "one-hot labels (or integer labels of shape (m,))",
            "linear": "targets",
        }[output]
        hint = " Samples go in columns: pass Y.T?" if shape == (m, nL) and m != nL else ""
        raise ShapeError(
            f"{what} must hold {kind} of shape (nL, m) = ({nL}, {m}); got {shape}.{hint}"
        )
    Y = backend.asarray(Y, dtype, what=what)
    all_finite(Y, what)
    if output in ("sigmoid", "softmax") and (
        bool(xp.any(Y < 0.0)) or bool(xp.any(Y > 1.0))
    ):
        lo, hi = float(xp.min(Y)), float(xp.max(Y))
        raise InputError(
            f"{what} for a {output} output must lie in [0, 1]; got values from {lo} to {hi}"
        )
    if output == "softmax":
        sums = xp.sum(Y, axis=0)
        if not bool(xp.all(xp.abs(sums - 1.0) < 1e-3)):
            raise InputError(
                f"{what} for a softmax output must be one-hot: each column sums to 1 "
                f"(or pass integer class labels of shape (m,))"
            )
    return Y
