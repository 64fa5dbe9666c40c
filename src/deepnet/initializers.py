"""Initial weights, drawn on the host so that one seed gives one network everywhere.

Random numbers are not part of the Array API standard: ``W[l]`` is drawn in float64 from
the host ``numpy.random.Generator`` the caller passes (see ``backend.host_rng``), scaled,
and only then cast and moved to the device by the network. ``b[l]`` starts at zeros.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from deepnet.backend import Array, Backend
from deepnet.errors import InputError


def he(n_in: int, n_out: int) -> float:
    """``sqrt(2 / n[l-1])``, for ReLU-like layers."""
    return math.sqrt(2.0 / n_in)


def xavier(n_in: int, n_out: int) -> float:
    """Glorot's ``sqrt(2 / (n[l-1] + n[l]))``, for tanh and sigmoid layers."""
    return math.sqrt(2.0 / (n_in + n_out))


def scaled(n_in: int, n_out: int) -> float:
    """``1 / sqrt(n[l-1])``, the notes' choice."""
    return 1.0 / math.sqrt(n_in)


INITIALIZERS: dict[str, Callable[[int, int], float]] = {
    "he": he,
    "xavier": xavier,
    "scaled": scaled,
}


def get(name: str) -> Callable[[int, int], float]:
    """The scale rule called ``name``."""
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise InputError(f"unknown init {name!r}; expected one of {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name]


def initialize_parameters(
    layer_dims: Sequence[int], init: str, rng: Any, backend: Backend, dtype: Any
) -> dict[str, Array]:
    """Parameters ``W1, b1, ..., WL, bL`` for ``layer_dims`` on ``backend``, as ``dtype``.

    ``W[l] = N(0, 1) * scale(n[l-1], n[l])`` of shape ``(n[l], n[l-1])``, drawn in float64
    from ``rng`` (a ``numpy.random.Generator``) and then moved; ``b[l] = 0`` of shape
    ``(n[l], 1)``.
    """
    scale = get(init)
    xp = backend.xp
    params = {}
    for l in range(1, len(layer_dims)):
        n_in, n_out = layer_dims[l - 1], layer_dims[l]
        W = rng.standard_normal((n_out, n_in)) * scale(n_in, n_out)
        params[f"W{l}"] = backend.asarray(W, dtype, what=f"W{l}")
        params[f"b{l}"] = xp.zeros((n_out, 1), dtype=dtype, device=backend.device)
    return params
