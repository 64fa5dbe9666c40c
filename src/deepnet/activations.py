"""Activations ``A = g(Z)`` with their backward ``dZ = dA * g'(Z)`` beside them.

Every forward is ``g(Z) -> A`` and every backward ``g_backward(dA, Z, A) -> dZ``, so the
layers call any of them alike. Every backward needs only ``A``, so a network may compute
``A`` in place over ``Z`` and pass ``Z=None``. All are pure functions of standard arrays:
the namespace comes from the inputs. The optional ``out=`` (and the scratch ``tmp=`` and
``zeros=``) are a workspace's buffers, filled through ``backend.into`` where the library
allows it; without them every function allocates its result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from deepnet.backend import Array, array_namespace, into
from deepnet.backend.kernels import ignore_overflow, relu_floor
from deepnet.errors import InputError

LEAKY_SLOPE = 0.01


def _positive(A: Array, out: Array | None) -> Array:
    """``1[A > 0]`` in ``A``'s dtype (written into ``out`` where it can be)."""
    if out is None:
        xp = array_namespace(A)
        return xp.astype(A > 0, A.dtype)
    return into(out, "greater", A, 0.0)


def relu(Z: Array, *, out: Array | None = None, zeros: Array | None = None) -> Array:
    """``max(Z, 0)``: one kernel.

    The other operand is a 0-d zero on ``Z``'s device, or ``zeros`` (a workspace's
    array of zeros shaped like ``Z``) where NumPy's maximum against a full array is
    measurably faster (``backend.relu_floor``). Never a Python scalar: array-api-compat
    makes each one a new tensor on torch, a host-to-device copy on CUDA.
    """
    return into(out, "maximum", Z, relu_floor(Z, zeros))


def relu_backward(
    dA: Array, Z: Array | None, A: Array, *, out: Array | None = None,
    tmp: Array | None = None,
) -> Array:
    """``dA * 1[Z > 0]``, read from the cached ``A`` (``A > 0`` exactly where ``Z > 0``)."""
    return into(out, "multiply", dA, _positive(A, tmp))


def leaky_relu(Z: Array, *, out: Array | None = None, zeros: Array | None = None) -> Array:
    """``Z`` where ``Z > 0``, else ``0.01 Z``: ``max(Z, 0.01 Z)``."""
    return into(out, "maximum", Z, Z * LEAKY_SLOPE)


def leaky_relu_backward(
    dA: Array, Z: Array | None, A: Array, *, out: Array | None = None,
    tmp: Array | None = None,
) -> Array:
    """``dA * (1 if Z > 0 else 0.01)``, from ``A`` (its sign is ``Z``'s)."""
    slope = _positive(A, tmp)
    slope *= 1.0 - LEAKY_SLOPE
    slope += LEAKY_SLOPE
    return into(out, "multiply", dA, slope)


def tanh(Z: Array, *, out: Array | None = None, zeros: Array | None = None) -> Array:
    """``tanh(Z)``."""
    return into(out, "tanh", Z)


def tanh_backward(
    dA: Array, Z: Array | None, A: Array, *, out: Array | None = None,
    tmp: Array | None = None,
) -> Array:
    """``dA * (1 - A²)``."""
    D = into(tmp, "multiply", A, A)
    D *= -1.0
    D += 1.0
    return into(out, "multiply", dA, D)


def sigmoid(Z: Array, *, out: Array | None = None, zeros: Array | None = None) -> Array:
    """``1 / (1 + exp(-Z))``: four kernels, in place in ``out`` where there is one.

    Accurate to a few ulps relative for every finite ``Z`` (``exp(-Z)``, ``1 + ·`` and
    the reciprocal each round once). Below ``Z ≈ -88.7`` (float32; ``-709.8`` float64)
    ``exp(-Z)`` overflows to ``inf`` and the result is ``0``, within the smallest
    normal number of the exact value; that overflow is expected, so NumPy's warning
    for it is silenced (``backend.ignore_overflow``). No ``where``: on NumPy and torch's
    CPU a select with a data-dependent condition costs more than the four passes here.
    """
    with ignore_overflow(Z):
        E = into(out, "negative", Z)
        E = into(out, "exp", E)
    E += 1.0
    return 1.0 / E if out is None else into(out, "divide", 1.0, E)


def sigmoid_backward(
    dA: Array, Z: Array | None, A: Array, *, out: Array | None = None,
    tmp: Array | None = None,
) -> Array:
    """``dA * A (1 - A)``."""
    D = into(tmp, "multiply", A, -1.0)
    D += 1.0
    D *= A
    return into(out, "multiply", dA, D)


def softmax(Z: Array, *, out: Array | None = None, zeros: Array | None = None) -> Array:
    """Column-wise ``exp(Z) / Σ exp(Z)``, shifted by each column's max (stable)."""
    xp = array_namespace(Z)
    E = xp.exp(Z - xp.max(Z, axis=0, keepdims=True))
    return into(out, "divide", E, xp.sum(E, axis=0, keepdims=True))


def softmax_backward(
    dA: Array, Z: Array | None, A: Array, *, out: Array | None = None,
    tmp: Array | None = None,
) -> Array:
    """``A * (dA - Σ_rows dA * A)``: the softmax Jacobian applied column by column.

    The network never needs it (the output layer's ``dZ[L]`` comes from the loss); it is
    here for research code that puts its own loss after a softmax.
    """
    xp = array_namespace(dA, A)
    return into(out, "multiply", A, dA - xp.sum(dA * A, axis=0, keepdims=True))


def linear(Z: Array, *, out: Array | None = None, zeros: Array | None = None) -> Array:
    """The identity (``Z`` itself, or a copy into ``out``)."""
    return Z if out is None or out is Z else into(out, "multiply", Z, 1.0)


def linear_backward(
    dA: Array, Z: Array | None, A: Array, *, out: Array | None = None,
    tmp: Array | None = None,
) -> Array:
    """``dA``."""
    return dA if out is None or out is dA else into(out, "multiply", dA, 1.0)


class Activation(NamedTuple):
    """An activation's name with its forward and backward."""

    name: str
    forward: Callable[..., Array]  # g(Z, *, out=None, zeros=None)
    backward: Callable[..., Array]  # g_backward(dA, Z, A, *, out=None, tmp=None)


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
    if isinstance(name, str) and name in ACTIVATIONS and name not in allowed:
        raise InputError(
            f"activation {name!r} cannot be used here; expected one of {', '.join(allowed)}"
        )
    if not isinstance(name, str) or name not in allowed:
        raise InputError(f"unknown activation {name!r}; expected one of {', '.join(allowed)}")
    return ACTIVATIONS[name]


__all__ = [
    "ACTIVATIONS", "HIDDEN", "LEAKY_SLOPE", "OUTPUT", "Activation", "get", "leaky_relu",
    "leaky_relu_backward", "linear", "linear_backward", "relu", "relu_backward", "sigmoid",
    "sigmoid_backward", "softmax", "softmax_backward", "tanh", "tanh_backward",
]
