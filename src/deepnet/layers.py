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

from deepnet import activations
from deepnet.backend import Array, array_namespace


def linear_forward(A_prev: Array, W: Array, b: Array) -> tuple[Array, tuple]:
    """``Z = W @ A_prev + b``; the cache is ``(A_prev, W, b)``."""
    Z = W @ A_prev + b
    return Z, (A_prev, W, b)


def linear_backward(dZ: Array, cache: tuple) -> tuple[Array, Array, Array]:
    """``(dA_prev, dW, db)`` from ``dZ`` and the cache of :func:`linear_forward`.

    ``dW`` and ``db`` carry the ``1/m`` of the notes; ``m = A_prev.shape[1]``.
    """
    A_prev, W, _ = cache
    xp = array_namespace(dZ, A_prev)
    m = A_prev.shape[1]
    dW = (dZ @ A_prev.T) / m
    db = xp.sum(dZ, axis=1, keepdims=True) / m
    dA_prev = W.T @ dZ
    return dA_prev, dW, db


def dense_forward(
    A_prev: Array, W: Array, b: Array, activation: str
) -> tuple[Array, tuple]:
    """``A = g(W @ A_prev + b)``; the cache is ``(linear_cache, Z, A)``."""
    g = activations.get(activation)
    Z, linear_cache = linear_forward(A_prev, W, b)
    A = g.forward(Z)
    return A, (linear_cache, Z, A)


def dense_backward(dA: Array, cache: tuple, activation: str) -> tuple[Array, Array, Array]:
    """``(dA_prev, dW, db)`` from ``dA`` and the cache of :func:`dense_forward`."""
    g = activations.get(activation)
    linear_cache, Z, A = cache
    dZ = g.backward(dA, Z, A)
    return linear_backward(dZ, linear_cache)
