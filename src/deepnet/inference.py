"""Inference in bounded memory: ``A[L]``, the cost and the metric of a network over many
examples, computed ``chunk`` examples at a time.

No activation larger than ``(n[l], chunk)`` is ever made, whatever ``m``. Arrays in
memory are read in the caller's column layout, ``X[:, a:b]`` (a strided view: BLAS takes
it as it is, no copy); memory maps are streamed by the data path (``deepnet.loader``).
``DeepNet.predict``/``predict_proba``/``evaluate`` and the validation of ``fit`` use
these functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from deepnet import checks, data
from deepnet.backend import Array
from deepnet.errors import InputError
from deepnet.loader import Loader
from deepnet.metrics import metric_for
from deepnet.model import Model

#: Examples per forward pass when evaluating (validation, ``predict``, ``evaluate``).
EVAL_CHUNK = 4096

Chunk = tuple[Array, Any, int]  # (A0 (n0, b), Y (nL, b) or None, offset of the first)


def chunks(net: Model, X: Any, Y: Any, chunk: int) -> tuple[Iterator[Chunk], int]:
    """``(chunks, m)``: ``X`` and ``Y`` (``None`` for features only) checked, and an
    iterator over them ``chunk`` examples at a time, in order.

    Memory maps are read by a :class:`~deepnet.loader.Loader`; arrays in memory are
    checked and moved once (``net._check_X``), then sliced by columns.
    """
    n0, nL = net.layer_dims[0], net.layer_dims[-1]
    if data.memmap_file(X) is None and data.memmap_file(Y) is None:
        X = net._check_X(X)
        m = X.shape[1]
        Y = None if Y is None else net._check_Y(Y, m)
        _fits(net, m, chunk)
        return (
            (X[:, at:min(at + chunk, m)], None if Y is None else Y[:, at:min(at + chunk, m)],
             at) for at in range(0, m, chunk)
        ), m
    Xt = data.features(net.backend, X, n0, net.dtype, "X")
    Yt = None if Y is None else data.labels(net.backend, Y, output=net.output, nL=nL,
                                            m=Xt.m, dtype=net.dtype, what="Y")
    _fits(net, Xt.m, chunk)
    return Loader(net.backend, Xt, Yt, net.dtype).sequential(chunk), Xt.m


def _fits(net: Model, m: int, chunk: int) -> None:
    """One chunk's forward pass and the ``(nL, m)`` outputs fit in the memory available."""
    itemsize = 4 if net.dtype_name == "float32" else 8
    checks.pass_memory(net.layer_dims, min(m, chunk), net.dtype_name, net.backend,
                       "each forward pass of predict, evaluate or validation",
                       extra=itemsize * net.layer_dims[-1] * m)


def outputs(net: Model, X: Any, chunk: int) -> Array:
    """``A[L]`` (nL, m) of ``X`` on the network's backend, no dropout."""
    parts, m = chunks(net, X, None, chunk)
    with net.backend.quiet_float_errors():
        if m <= chunk:
            return net._forward(next(iter(parts))[0])[0]
        xp = net.xp
        out = xp.empty((net.layer_dims[-1], m), dtype=net.dtype, device=net.backend.device)
        for A0, _, at in parts:
            out[:, at:at + A0.shape[1]] = net._forward(A0)[0]
        return out


def sums(net: Model, parts: Iterable[Chunk]) -> tuple[Array, Array]:
    """``(Σ loss, Σ metric)`` over ``parts`` (no dropout, no L2 term), 0-d device arrays;
    zeros where there are no parts (a process whose share is empty)."""
    metric = metric_for(net.output)
    loss = total = None
    for A0, Y, _ in parts:
        AL, caches = net._forward(A0)
        value = net._cost(AL, Y, caches, m=1, l2=False)  # Σ loss over the chunk
        loss = value if loss is None else loss + value
        value = metric.total(AL, Y)
        total = value if total is None else total + value
    if loss is None or total is None:
        zero = net.xp.zeros((), dtype=net.dtype, device=net.backend.device)
        return zero, zero
    return loss, total


def evaluate(net: Model, X: Any, Y: Any, chunk: int) -> tuple[Array, Array, int]:
    """``(cost, Σ metric, m)``: the cost with its L2 term and the metric's sum over
    ``(X, Y)``, as 0-d device arrays."""
    if Y is None:  # chunks() reads None as "features only"
        raise InputError("Y must be an array of labels (nL, m) or (m,); got NoneType")
    parts, m = chunks(net, X, Y, chunk)
    with net.backend.quiet_float_errors():
        loss, total = sums(net, parts)
        cost = loss / m
        if net.l2 > 0.0:
            cost = cost + net._l2_cost(m)
    return cost, total, m


__all__ = ["EVAL_CHUNK", "Chunk", "chunks", "evaluate", "outputs", "sums"]
