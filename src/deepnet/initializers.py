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
    """He's scale ``sqrt(2 / n[l-1])``, for ReLU-like layers.

    Parameters
    ----------
    n_in : int
        ``n[l-1]``, the units feeding the layer.
    n_out : int
        ``n[l]``, the layer's units (unused here).

    Returns
    -------
    float
        The standard deviation of the layer's initial weights.
    """
    return math.sqrt(2.0 / n_in)


def xavier(n_in: int, n_out: int) -> float:
    """Glorot's scale ``sqrt(2 / (n[l-1] + n[l]))``, for tanh and sigmoid layers.

    Parameters and return value as in :func:`he`.
    """
    return math.sqrt(2.0 / (n_in + n_out))


def scaled(n_in: int, n_out: int) -> float:
    """``1 / sqrt(n[l-1])``, the notes' choice.

    Parameters and return value as in :func:`he`.
    """
    return 1.0 / math.sqrt(n_in)


INITIALIZERS: dict[str, Callable[[int, int], float]] = {
    "he": he,
    "xavier": xavier,
    "scaled": scaled,
}


def get(name: str) -> Callable[[int, int], float]:
    """The scale rule called ``name`` (``"he"``, ``"xavier"`` or ``"scaled"``).

    Raises
    ------
    InputError
        For any other name.
    """
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise InputError(f"unknown init {name!r}; expected one of {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name]


def initialize_parameters(
    layer_dims: Sequence[int], init: str, rng: Any, backend: Backend, dtype: Any
) -> dict[str, Array]:
    """Initial parameters ``W1, b1, ..., WL, bL``: the notes' ``initialize_parameters``.

    ``W[l] = N(0, 1) * scale(n[l-1], n[l])``, drawn in float64 on the host and then cast
    and moved, so one seed gives the same bits on every backend; ``b[l] = 0``.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n0, n1, ..., nL]``.
    init : str
        The scale rule: ``"he"``, ``"xavier"`` or ``"scaled"``.
    rng : numpy.random.Generator
        The host generator the weights come from (``backend.host_rng(seed)``).
    backend : Backend
        Where the parameters go.
    dtype : dtype
        The backend's floating dtype of the parameters.

    Returns
    -------
    dict of str to array
        ``W[l]`` of shape ``(n[l], n[l-1])`` and ``b[l]`` of shape ``(n[l], 1)``.
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


__all__ = ["INITIALIZERS", "get", "he", "initialize_parameters", "scaled", "xavier"]
