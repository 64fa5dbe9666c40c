"""Costs and the output layer's ``dZ[L]``; the output activation implies the loss.

Each cost sums over output units and averages over the ``m`` examples (DESIGN.md)::

    sigmoid → BCE  -(1/m) ΣΣ [y log a + (1-y) log(1-a)]
    softmax → CE   -(1/m) ΣΣ y log a
    linear  → MSE   (1/(2m)) ΣΣ (a-y)²

so that ``dZ[L] = A[L] - Y`` (before the ``1/m``) for all three: the output layer never
goes through the unstable ``dA[L]`` quotient. Costs are computed from the logits
``Z[L]`` with log-sum-exp and softplus, finite for any finite logit. Results are 0-d
arrays on the device; reading them back to the host is the caller's choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from deepnet.backend import Array, array_namespace
from deepnet.backend.kernels import constant, prefers_fewer_kernels
from deepnet.errors import InputError


def bce_from_logits(ZL: Array, Y: Array) -> Array:
    """Binary cross-entropy from ``Z[L]``: ``(1/m) Σ [softplus(z) - z y]``.

    ``softplus(z) = log(1 + e^z)`` is ``logaddexp(0, z)`` where fewer kernels pay
    (``backend.prefers_fewer_kernels``: five launches in all instead of ten), else
    ``max(z, 0) + log(1 + e^{-|z|})``, whose ufuncs NumPy vectorizes (its ``logaddexp``
    is slower; ``benchmarks/gpu_kernels.py`` times both). Both are finite for every
    finite ``z``. ``0`` is a 0-d array on the device, never ``clip`` (array-api-compat's
    generic wrapper on CuPy reads boolean masks back to the host) nor a Python scalar (a
    new tensor per call on torch).
    """
    xp = array_namespace(ZL, Y)
    m = ZL.shape[1]
    zero = constant(0.0, ZL)
    if prefers_fewer_kernels(ZL):
        softplus = xp.logaddexp(zero, ZL)
    else:
        softplus = xp.maximum(ZL, zero) + xp.log1p(xp.exp(-xp.abs(ZL)))
    return xp.sum(softplus - ZL * Y) / m


def _log_floor(X: Array) -> Array:
    """``log(max(X, tiny))``: never ``log(0)``; no clip, no Python scalar (see above)."""
    xp = array_namespace(X)
    return xp.log(xp.maximum(X, constant(xp.finfo(X.dtype).smallest_normal, X)))


def bce_from_output(AL: Array, Y: Array) -> Array:
    """Binary cross-entropy from ``A[L]``; ``log(0)`` is avoided by flooring at ``tiny``."""
    xp = array_namespace(AL, Y)
    m = AL.shape[1]
    return -xp.sum(Y * _log_floor(AL) + (1.0 - Y) * _log_floor(1.0 - AL)) / m


def ce_from_logits(ZL: Array, Y: Array) -> Array:
    """Categorical cross-entropy from ``Z[L]``: ``(1/m) ΣΣ y (logsumexp(z) - z)``."""
    xp = array_namespace(ZL, Y)
    m = ZL.shape[1]
    zmax = xp.max(ZL, axis=0, keepdims=True)
    shifted = ZL - zmax
    lse = xp.log(xp.sum(xp.exp(shifted), axis=0, keepdims=True))
    return xp.sum(Y * (lse - shifted)) / m


def ce_from_output(AL: Array, Y: Array) -> Array:
    """Categorical cross-entropy from ``A[L]``, floored at ``tiny``."""
    xp = array_namespace(AL, Y)
    m = AL.shape[1]
    return -xp.sum(Y * _log_floor(AL)) / m


def mse(AL: Array, Y: Array) -> Array:
    """Mean squared error ``(1/(2m)) ΣΣ (a - y)²`` (``Z[L] = A[L]`` for a linear output)."""
    xp = array_namespace(AL, Y)
    m = AL.shape[1]
    D = AL - Y
    return xp.sum(D * D) / (2 * m)


def output_dZ(AL: Array, Y: Array) -> Array:
    """``dZ[L] = A[L] - Y`` for every loss here, before the ``1/m``."""
    return AL - Y


class Loss(NamedTuple):
    """A loss: its name, the output activation it pairs with and its costs."""

    name: str
    output: str
    from_logits: Callable[[Array, Array], Array]
    from_output: Callable[[Array, Array], Array]


LOSSES: dict[str, Loss] = {
    "sigmoid": Loss("binary_cross_entropy", "sigmoid", bce_from_logits, bce_from_output),
    "softmax": Loss("categorical_cross_entropy", "softmax", ce_from_logits, ce_from_output),
    "linear": Loss("mean_squared_error", "linear", lambda Z, Y: mse(Z, Y), mse),
}


def for_output(activation: str) -> Loss:
    """The loss implied by the output activation."""
    try:
        return LOSSES[activation]
    except KeyError:
        raise InputError(
            f"no loss pairs with output activation {activation!r}; "
            f"expected one of {', '.join(LOSSES)}"
        ) from None


def one_hot(labels: Array, n_classes: int, dtype: object) -> Array:
    """Integer labels ``(m,)`` as a one-hot ``(n_classes, m)`` matrix, on their device."""
    xp = array_namespace(labels)
    classes = xp.arange(n_classes, dtype=labels.dtype, device=labels.device)
    return xp.astype(classes[:, None] == labels[None, :], dtype)


__all__ = [
    "LOSSES", "Loss", "bce_from_logits", "bce_from_output", "ce_from_logits",
    "ce_from_output", "for_output", "mse", "one_hot", "output_dZ",
]
