"""The per-layer kernels of the notes, public for research code that writes its own loop.

Forward::

    Z[l] = W[l] @ A[l-1] + b[l]          linear_forward
    A[l] = g[l](Z[l])                    dense_forward

Backward::

    dZ[l]   = dA[l] * g[l]'(Z[l])        dense_backward
    dW[l]   = dZ[l] @ A[l-1].T / m       linear_backward
    db[l]   = Σ_columns dZ[l] / m
    dA[l-1] = W[l].T @ dZ[l]

Shapes: ``A_prev (n[l-1], m)``, ``W (n[l], n[l-1])``, ``b (n[l], 1)``, ``Z, A (n[l], m)``.
"""

from __future__ import annotations

from typing import NamedTuple

from deepnet import activations
from deepnet.backend import Array, array_namespace, into
from deepnet.errors import InputError, ShapeError


class Buffers(NamedTuple):
    """One layer's slots in a network's workspace (see ``deepnet.buffers.Workspace``).

    Every field may be ``None``; a kernel then allocates that result instead.

    Attributes
    ----------
    A : array (n[l], m) or None
        Receives ``Z[l]`` and then ``A[l]``, in place.
    dA_prev : array (n[l-1], m) or None
        Receives ``dA[l-1]``.
    dW, db : arrays shaped like W[l] (n[l], n[l-1]) and b[l] (n[l], 1), or None
        Receive the gradients.
    tmp : array (n[l], m) or None
        Scratch.
    zeros : array (n[l], m) or None
        Zeros (NumPy's maximum against an array is faster than against 0).
    ones : array (m, 1) or None
        Ones: ``db = dZ @ ones``.
    """

    A: Array | None = None
    dA_prev: Array | None = None
    dW: Array | None = None
    db: Array | None = None
    tmp: Array | None = None
    zeros: Array | None = None
    ones: Array | None = None


NO_BUFFERS = Buffers()


def _shape(x: object, name: str, where: str, two_d: bool = True) -> tuple:
    shape = getattr(x, "shape", None)
    if shape is None or not hasattr(x, "dtype"):
        raise InputError(
            f"{where}: {name} must be an array of the network's library; got "
            f"{type(x).__name__} (convert it first, e.g. net.backend.asarray(x))"
        )
    if two_d and len(shape) != 2:
        raise ShapeError(f"{where}: {name} must be 2-D; got shape {tuple(shape)}")
    return tuple(shape)


def _check_linear(A_prev: Array, W: Array, b: Array, where: str) -> None:
    """The notes' shapes, before any arithmetic: ``A_prev (n[l-1], m)``, ``W (n[l],
    n[l-1])``, ``b (n[l], 1)`` (a ``b`` of shape ``(n[l],)`` would broadcast along the
    examples instead of the units)."""
    shapes = [_shape(A_prev, "A_prev", where), _shape(W, "W", where),
              _shape(b, "b", where, two_d=False)]
    (n_prev, _), (n, n_w), b_shape = shapes
    if n_w != n_prev:
        raise ShapeError(f"{where}: W {shapes[1]} is (n[l], n[l-1]), so A_prev must have "
                         f"n[l-1] = {n_w} rows; got A_prev {shapes[0]}")
    if b_shape != (n, 1):
        raise ShapeError(f"{where}: b must have shape (n[l], 1) = ({n}, 1) for W "
                         f"{shapes[1]}; got {b_shape}")


def _check_backward(dZ: Array, name: str, cache: object, divide_by: object,
                    where: str) -> None:
    """A gradient ``(n[l], m)`` against the ``(A_prev, W, b)`` cache of its layer."""
    A_prev, W, b = _check_cache(cache, where, "(A_prev, W, b)")
    _check_linear(A_prev, W, b, where)
    expected = (W.shape[0], A_prev.shape[1])
    if _shape(dZ, name, where) != expected:
        raise ShapeError(f"{where}: {name} has shape {tuple(dZ.shape)}; expected (n[l], m) "
                         f"= {expected}, the shape of Z[l]")
    if divide_by is not None and (
            isinstance(divide_by, bool) or not isinstance(divide_by, (int, float))
            or not 0 < divide_by < float("inf")):
        raise InputError(f"{where}: divide_by must be a positive number (the m of "
                         f"dW = dZ A_prev.T / m) or None; got {divide_by!r}")


def _check_cache(cache: object, where: str, form: str) -> tuple:
    if not isinstance(cache, tuple) or len(cache) != 3:
        raise InputError(f"{where}: cache must be the tuple {form} that the forward "
                         f"kernel returned; got {type(cache).__name__}")
    return cache


def linear_forward(
    A_prev: Array, W: Array, b: Array, *, out: Array | None = None
) -> tuple[Array, tuple]:
    """``Z[l] = W[l] @ A[l-1] + b[l]``.

    Parameters
    ----------
    A_prev : array (n[l-1], m)
        ``A[l-1]``, one example per column.
    W : array (n[l], n[l-1])
    b : array (n[l], 1)
        Broadcast over the columns.
    out : array (n[l], m), optional
        Receives ``Z`` where the backend can write into buffers (``backend.into``).

    Returns
    -------
    Z : array (n[l], m)
    cache : tuple
        ``(A_prev, W, b)``, what :func:`linear_backward` needs.

    Examples
    --------
    >>> import numpy as np, deepnet as dn
    >>> A_prev, W, b = np.ones((3, 5)), np.ones((2, 3)), np.zeros((2, 1))
    >>> Z, cache = dn.linear_forward(A_prev, W, b)
    >>> Z.shape
    (2, 5)
    """
    _check_linear(A_prev, W, b, "linear_forward")
    return _linear_forward(A_prev, W, b, out)


def _linear_forward(A_prev: Array, W: Array, b: Array, out: Array | None = None
                    ) -> tuple[Array, tuple]:
    """:func:`linear_forward` on arrays known to fit (the network's own): no checks."""
    Z = into(out, "matmul", W, A_prev)
    Z += b
    return Z, (A_prev, W, b)


def linear_backward(
    dZ: Array, cache: tuple, *, buffers: Buffers = NO_BUFFERS, need_dA_prev: bool = True,
    divide_by: float | None = None,
) -> tuple[Array | None, Array, Array]:
    """The gradients of layer ``l`` from ``dZ[l]``: the notes' ``linear_backward``.

    ``dW = dZ @ A_prev.T / m``, ``db = Σ_columns dZ / m`` (the ``1/m`` of the notes, with
    ``m = A_prev.shape[1]``) and ``dA_prev = W.T @ dZ``. ``db`` is the product with a
    column of ones (on NumPy 21 µs against 55 µs for ``sum(axis=1)`` at ``(64, 4096)``,
    ``benchmarks/NOTES.md``).

    Parameters
    ----------
    dZ : array (n[l], m)
    cache : tuple
        ``(A_prev, W, b)`` from :func:`linear_forward`.
    buffers : Buffers, optional
        Workspace slots for ``dA_prev``, ``dW``, ``db`` and the ones (a training step's).
    need_dA_prev : bool
        ``False`` skips ``dA[0] = W[1].T @ dZ[1]``, which no update needs.
    divide_by : float, optional
        Replaces the ``m``. The network passes 1: it folds the ``1/m`` into ``dZ[L]``
        once, which every later ``dZ`` inherits, and so saves a pass over every ``dW``.

    Returns
    -------
    dA_prev : array (n[l-1], m) or None
        ``None`` when ``need_dA_prev`` is false.
    dW : array (n[l], n[l-1])
    db : array (n[l], 1)
    """
    _check_backward(dZ, "dZ", cache, divide_by, "linear_backward")
    return _linear_backward(dZ, cache, buffers, need_dA_prev, divide_by)


def _linear_backward(dZ: Array, cache: tuple, buffers: Buffers = NO_BUFFERS,
                     need_dA_prev: bool = True, divide_by: float | None = None,
                     ) -> tuple[Array | None, Array, Array]:
    """:func:`linear_backward` on the network's own caches: no checks."""
    A_prev, W, _ = cache
    m = A_prev.shape[1]
    ones = buffers.ones
    if ones is None:
        xp = array_namespace(dZ)
        ones = xp.ones((m, 1), dtype=dZ.dtype, device=dZ.device)
    divide_by = m if divide_by is None else divide_by
    dW = into(buffers.dW, "matmul", dZ, A_prev.T)
    db = into(buffers.db, "matmul", dZ, ones)
    if divide_by != 1:
        dW *= 1.0 / divide_by
        db *= 1.0 / divide_by
    dA_prev = into(buffers.dA_prev, "matmul", W.T, dZ) if need_dA_prev else None
    return dA_prev, dW, db


def dense_forward(
    A_prev: Array, W: Array, b: Array, activation: str, *, buffers: Buffers = NO_BUFFERS
) -> tuple[Array, tuple]:
    """``A[l] = g[l](W[l] @ A[l-1] + b[l])``: the notes' ``linear_activation_forward``.

    Parameters
    ----------
    A_prev : array (n[l-1], m)
    W : array (n[l], n[l-1])
    b : array (n[l], 1)
    activation : str
        ``g[l]``: ``"relu"``, ``"leaky_relu"``, ``"tanh"``, ``"sigmoid"``, ``"softmax"``
        or ``"linear"``.
    buffers : Buffers, optional
        With ``buffers.A``, ``A`` is computed in place over ``Z`` and the cache holds
        ``Z = None`` (every activation's backward needs only ``A``).

    Returns
    -------
    A : array (n[l], m)
    cache : tuple
        ``(linear_cache, Z, A)``, what :func:`dense_backward` needs.
    """
    _check_linear(A_prev, W, b, "dense_forward")
    return _dense_forward(A_prev, W, b, activation, buffers)


def _dense_forward(A_prev: Array, W: Array, b: Array, activation: str,
                   buffers: Buffers = NO_BUFFERS) -> tuple[Array, tuple]:
    """:func:`dense_forward` on arrays known to fit (the network's own): no checks."""
    g = activations.get(activation)
    Z, linear_cache = _linear_forward(A_prev, W, b, buffers.A)
    if buffers.A is None:
        return (A := g.forward(Z)), (linear_cache, Z, A)
    A = g.forward(Z, out=Z, zeros=buffers.zeros)
    return A, (linear_cache, None, A)


def dense_backward(
    dA: Array, cache: tuple, activation: str, *, buffers: Buffers = NO_BUFFERS,
    need_dA_prev: bool = True, divide_by: float | None = None,
) -> tuple[Array | None, Array, Array]:
    """``dZ[l] = dA[l] * g[l]'(Z[l])``, then :func:`linear_backward`: the notes'
    ``linear_activation_backward``.

    Parameters
    ----------
    dA : array (n[l], m)
    cache : tuple
        ``(linear_cache, Z, A)`` from :func:`dense_forward`.
    activation : str
        ``g[l]``, as given to :func:`dense_forward`.
    buffers : Buffers, optional
        Workspace slots; with them ``dZ`` overwrites ``dA`` in place.
    need_dA_prev : bool
        As in :func:`linear_backward`.
    divide_by : float, optional
        As in :func:`linear_backward`.

    Returns
    -------
    dA_prev : array (n[l-1], m) or None
    dW : array (n[l], n[l-1])
    db : array (n[l], 1)
    """
    activations.get(activation)
    linear_cache = _check_cache(cache, "dense_backward", "(linear_cache, Z, A)")[0]
    _check_backward(dA, "dA", linear_cache, divide_by, "dense_backward")
    return _dense_backward(dA, cache, activation, buffers, need_dA_prev, divide_by)


def _dense_backward(dA: Array, cache: tuple, activation: str, buffers: Buffers = NO_BUFFERS,
                    need_dA_prev: bool = True, divide_by: float | None = None,
                    ) -> tuple[Array | None, Array, Array]:
    """:func:`dense_backward` on the network's own caches: no checks."""
    g = activations.get(activation)
    linear_cache, Z, A = cache
    out = dA if buffers.tmp is not None else None
    dZ = g.backward(dA, Z, A, out=out, tmp=buffers.tmp)
    return _linear_backward(dZ, linear_cache, buffers, need_dA_prev, divide_by)


__all__ = ["NO_BUFFERS", "Buffers", "dense_backward", "dense_forward", "linear_backward",
           "linear_forward"]
