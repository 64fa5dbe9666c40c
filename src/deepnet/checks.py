"""Argument checks shared by the public entry points; each raises before any work starts.

Every message says what was expected and what was received.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from deepnet.backend import Array, Backend, array_namespace, host_array
from deepnet.errors import InputError, ShapeError


def positive_int(value: Any, what: str) -> int:
    """``value`` as an int ≥ 1 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise InputError(f"{what} must be a positive integer; got {value!r}")
    return int(value)


def real_number(
    value: Any, what: str, *, low: float | None = None, high: float | None = None,
    low_open: bool = False, high_open: bool = False,
) -> float:
    """``value`` as a finite float inside the given bounds."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise InputError(f"{what} must be a finite real number; got {value!r}")
    value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        raise InputError(f"{what} must be {'>' if low_open else '>='} {low}; got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise InputError(f"{what} must be {'<' if high_open else '<='} {high}; got {value!r}")
    return value


def layer_dims(dims: Any) -> tuple[int, ...]:
    """``[n0, n1, ..., nL]``: at least two positive integers."""
    if isinstance(dims, (str, bytes)) or not hasattr(dims, "__len__"):
        raise InputError(
            f"layer_dims must be a list of layer sizes [n0, n1, ..., nL]; got {dims!r}"
        )
    dims = list(dims)
    if len(dims) < 2:
        raise InputError(
            f"layer_dims needs at least two sizes (input and output), [n0, ..., nL]; "
            f"got {dims!r}"
        )
    return tuple(positive_int(n, f"layer_dims[{i}]") for i, n in enumerate(dims))


def all_finite(x: Array, what: str) -> None:
    """Refuse NaN or inf in ``x`` (one read back to the host)."""
    xp = array_namespace(x)
    if not bool(xp.all(xp.isfinite(x))):
        bad = int(xp.sum(xp.astype(~xp.isfinite(x), xp.int64)))
        raise InputError(f"{what} must be finite; it holds {bad} NaN or inf value(s)")


def features(backend: Backend, X: Any, n0: int, dtype: Any, what: str = "X") -> Array:
    """``X`` of shape ``(n0, m)`` on ``backend`` as ``dtype``, finite, ``m ≥ 1``."""
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
    X = backend.asarray(X, dtype, what=what)
    all_finite(X, what)
    return X


def _shape_of(x: Any, what: str) -> tuple[int, ...]:
    shape = getattr(x, "shape", None)
    if shape is None:
        if isinstance(x, (list, tuple)):
            return tuple(host_array(x, what).shape)
        raise InputError(f"{what} must be an array; got {type(x).__name__}")
    return tuple(int(s) for s in shape)


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
        Yd = xp.astype(Yd, xp.int64)
        if bool(xp.any(Yd < 0)) or bool(xp.any(Yd >= nL)):
            lo, hi = int(xp.min(Yd)), int(xp.max(Yd))
            raise InputError(
                f"{what} class labels must lie in 0..{nL - 1} (the softmax has nL = {nL} "
                f"units); got labels from {lo} to {hi}"
            )
        return one_hot(Yd, nL, dtype)
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
