"""Activations ``A = g(Z)`` with their backward ``dZ = dA * g'(Z)`` beside them.

Every backward has the signature ``g_backward(dA, Z, A) -> dZ`` so the layers can call
any of them alike; each uses whichever of ``Z`` and ``A`` is cheaper. All are pure
functions of standard arrays: the namespace comes from the inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from deepnet.backend import Array, array_namespace
from deepnet.errors import InputError

LEAKY_SLOPE = 0.01


def relu(Z: Array) -> Array:
    """``max(Z, 0)``."""
    xp = array_namespace(Z)
    return Z * xp.astype(Z > 0, Z.dtype)


def relu_backward(dA: Array, Z: Array, A: Array) -> Array:
    """``dA * 1[Z > 0]``, read from the cached ``A`` (``A > 0`` exactly where ``Z > 0``)."""
    xp = array_namespace(dA, A)
    return dA * xp.astype(A > 0, dA.dtype)


def leaky_relu(Z: Array) -> Array:
    """``Z`` where ``Z > 0``, else ``0.01 Z``."""
    return Z * _leaky_slope(Z)


def leaky_relu_backward(dA: Array, Z: Array, A: Array) -> Array:
    """``dA * (1 if Z > 0 else 0.01)``."""
    return dA * _leaky_slope(Z)


def _leaky_slope(Z: Array) -> Array:
    xp = array_namespace(Z)
    return xp.astype(Z > 0, Z.dtype) * (1.0 - LEAKY_SLOPE) + LEAKY_SLOPE


def tanh(Z: Array) -> Array:
    """``tanh(Z)``."""
    return array_namespace(Z).tanh(Z)


def tanh_backward(dA: Array, Z: Array, A: Array) -> Array:
    """``dA * (1 - A²)``."""
    return dA * (1.0 - A * A)


def sigmoid(Z: Array) -> Array:
    """``1 / (1 + exp(-Z))``, evaluated without overflow for any finite ``Z``.

    With ``e = exp(-|Z|) ≤ 1``: ``σ(Z) = 1/(1+e)`` for ``Z ≥ 0`` and ``e/(1+e)`` below,
    so no branch ever computes ``exp`` of a large positive number.
    """
    xp = array_namespace(Z)
    e = xp.exp(-xp.abs(Z))
    return xp.where(Z >= 0, xp.ones_like(e), e) / (1.0 + e)


def sigmoid_backward(dA: Array, Z: Array, A: Array) -> Array:
    """``dA * A (1 - A)``."""
    return dA * A * (1.0 - A)


def softmax(Z: Array) -> Array:
    """Column-wise ``exp(Z) / Σ exp(Z)``, shifted by each column's max (stable)."""
    xp = array_namespace(Z)
    E = xp.exp(Z - xp.max(Z, axis=0, keepdims=True))
    return E / xp.sum(E, axis=0, keepdims=True)


def softmax_backward(dA: Array, Z: Array, A: Array) -> Array:
    """``A * (dA - Σ_rows dA * A)``: the softmax Jacobian applied column by column.

    The network never needs it (the output layer's ``dZ[L]`` comes from the loss); it is
    here for research code that puts its own loss after a softmax.
    """
    xp = array_namespace(dA, A)
    return A * (dA - xp.sum(dA * A, axis=0, keepdims=True))


def linear(Z: Array) -> Array:
    """The identity."""
    return Z


def linear_backward(dA: Array, Z: Array, A: Array) -> Array:
    """``dA``."""
    return dA


class Activation(NamedTuple):
    """An activation's name with its forward and backward."""

    name: str
    forward: Callable[[Array], Array]
    backward: Callable[[Array, Array, Array], Array]


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("relu", relu, relu_backward),
        Activation("leaky_relu", leaky_relu, leaky_relu_backward),
        Activation("tanh", tanh, tanh_backward),
        Activation("sigmoid", sigmoid, sigmoid_backward),
        Activation("softmax", softmax, softmax_backward),
        Activation("linear", linear, linear_backward),
    )
}
HIDDEN = ("relu", "leaky_relu", "tanh", "sigmoid", "linear")
OUTPUT = ("sigmoid", "softmax", "linear")


def get(name: str | Activation, *, allowed: tuple[str, ...] = tuple(ACTIVATIONS)) -> Activation:
    """The activation called ``name``, checked against ``allowed``."""
    if isinstance(name, Activation):
        name = name.name
    if not isinstance(name, str) or name not in allowed:
        raise InputError(f"unknown activation {name!r}; expected one of {', '.join(allowed)}")
    return ACTIVATIONS[name]
