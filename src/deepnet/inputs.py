"""Checks of the notes' arrays: features ``X (n0, m)``, labels ``Y`` in each layout the
losses accept, output activations ``A[L]`` and the caches of ``forward``. Each raises
before any work starts, saying what was expected and what was received.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from deepnet import checks
from deepnet.backend import Array, Backend, device_label
from deepnet.checks import shape_of
from deepnet.errors import InputError, ShapeError


def features(backend: Backend, X: Any, n0: int, dtype: Any, what: str = "X") -> Array:
    """``X`` of shape ``(n0, m)`` on ``backend`` as ``dtype``, finite, ``m ≥ 1``."""
    feature_shape(X, n0, what)
    X = backend.asarray(X, dtype, what=what)
    checks.all_finite(X, what)
    return X


def feature_shape(X: Any, n0: int, what: str = "X") -> tuple[int, int]:
    """The shape ``(n0, m)`` of ``X``, ``m ≥ 1``; a ShapeError saying what went wrong."""
    shape = shape_of(X, what)
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


def output_activations(
    backend: Backend, AL: Any, *, output: str, nL: int, dtype: Any, what: str = "AL"
) -> Array:
    """``A[L]`` of shape ``(nL, m)``, ``m ≥ 1``, finite; probabilities for sigmoid/softmax."""
    shape = shape_of(AL, what)
    if len(shape) != 2 or shape[0] != nL:
        raise ShapeError(f"{what} must have shape (nL, m) = ({nL}, m); got {shape}")
    if shape[1] == 0:
        raise ShapeError(f"{what} holds no examples: shape {shape}; need m >= 1 columns")
    AL = backend.asarray(AL, dtype, what=what)
    checks.all_finite(AL, what)
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
            got_shape = tuple(x.shape)
            if got_shape != shape:
                raise ShapeError(
                    f"{where}: {name} has shape {got_shape}, expected {shape} for layer {l} and "
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

    shape = shape_of(Y, what)
    xp = backend.xp
    if output == "softmax" and len(shape) == 1:
        if shape[0] != m:
            raise ShapeError(f"{what} has {shape[0]} labels but X has m = {m} examples")
        Yd = backend.asarray(Y, None, what=what)
        if not xp.isdtype(Yd.dtype, "integral"):
            if not xp.isdtype(Yd.dtype, "real floating"):
                raise InputError(f"{what} class labels must be integers; got dtype {Yd.dtype}")
            checks.all_finite(Yd, what)
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
        if output == "softmax" and shape in ((m, 1), (1, m)):
            hint = " Class labels go in shape (m,): pass Y.ravel()?"
        raise ShapeError(
            f"{what} must hold {kind} of shape (nL, m) = ({nL}, {m}); got {shape}.{hint}"
        )
    Y = backend.asarray(Y, dtype, what=what)
    checks.all_finite(Y, what)
    if output == "linear":
        _squares_fit(xp, Y, what)
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


def _squares_fit(xp: Any, Y: Array, what: str) -> None:
    """Targets whose squares overflow make the cost, ½ mean (A - Y)², inf at the first
    step whatever the learning rate: refused here, with the real cause."""
    if Y.shape[0] * Y.shape[1] == 0:
        return
    top = float(xp.max(xp.abs(Y)))
    limit = math.sqrt(float(xp.finfo(Y.dtype).max))
    if top > limit:
        name = checks.dtype_name(Y.dtype)
        hint = "" if name == "float64" else " or use dtype='float64'"
        raise InputError(
            f"{what} targets must stay within ±{limit:.3g} for a linear output in {name} "
            f"(their squares enter the cost and would overflow); got |{what}| up to "
            f"{top:.3g}: scale the targets (e.g. Y / Y.std()){hint}"
        )


__all__ = ["caches", "feature_shape", "features", "labels", "output_activations"]
