"""What a network keeps besides its layers' arithmetic: the live parameter mapping
(``net.params``), the flat parameter and gradient buffers, and the per-batch-size
workspace that training steps write into.

The shapes are the notes': ``W[l]`` is ``(n[l], n[l-1])``, ``b[l]`` is ``(n[l], 1)``.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

from deepnet import checks, layers
from deepnet.backend import Array
from deepnet.errors import InputError


class Parameters(MutableMapping):
    """``net.params``: the live parameters of a network, as the notes' dictionary.

    ``params["W1"]`` is the network's own array; ``params["W1"] = value`` checks
    ``value`` and writes it into that array (on backends with a flat parameter buffer,
    into the buffer), so a hand-written update loop trains the network itself. Keys
    cannot be added or deleted.
    """

    def __init__(self, net: Any) -> None:
        self._net = net

    def __getitem__(self, key: str) -> Array:
        try:
            return self._net._params[key]
        except (KeyError, TypeError):
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        self._net._assign(key, value)

    def __delitem__(self, key: str) -> None:
        raise InputError(
            f"parameters cannot be deleted ({checks._short(key)}): the network needs every "
            "W[l] and b[l]; assign a new value instead"
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._net._params)

    def __len__(self) -> int:
        return len(self._net._params)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {tuple(v.shape)}" for k, v in self._net._params.items())
        return f"Parameters({{{shapes}}}, {self._net.dtype_name} on {self._net.backend.label})"


class Workspace:
    """Buffers for one batch size ``m``, reused by every training step.

    Writing into them (through ``backend.into``) instead of allocating multi-MB
    temporaries each step removes the page faults that dominated the step at small
    widths (benchmarks/NOTES.md). ``A[l]`` holds ``Z[l]`` and then ``A[l]``; ``dA[l]``
    holds ``dA[l]`` and then ``dZ[l]``; ``dW``/``db`` are the gradients the optimizer
    reads; ``tmp`` and ``zeros`` are per-width scratch; ``ones`` is ``(m, 1)``.
    """

    def __init__(self, net: Any, m: int) -> None:
        xp, dtype, device = net.xp, net.dtype, net.backend.device
        dims, L = net.layer_dims, net.L

        def empty(shape: tuple[int, ...]) -> Array:
            return xp.empty(shape, dtype=dtype, device=device)

        self.m = m
        self.A = [None] + [empty((dims[l], m)) for l in range(1, L + 1)]
        self.dA = [None] + [empty((dims[l], m)) for l in range(1, L)] + [None]
        self.grads_flat, grads = net._grads_flat  # shared by every batch size
        self.dW = [None] + [grads[f"dW{l}"] for l in range(1, L + 1)]
        self.db = [None] + [grads[f"db{l}"] for l in range(1, L + 1)]
        self.ones = xp.ones((m, 1), dtype=dtype, device=device)
        widths = sorted(set(dims[1:L]))
        self.tmp = {n: empty((n, m)) for n in widths}
        self.zeros = {n: xp.zeros((n, m), dtype=dtype, device=device) for n in widths}
        self._layers = [None] + [self._make(l, dims) for l in range(1, L + 1)]

    def _make(self, l: int, dims: tuple[int, ...]) -> layers.Buffers:
        n = dims[l]
        return layers.Buffers(
            A=self.A[l], dA_prev=self.dA[l - 1], dW=self.dW[l], db=self.db[l],
            tmp=self.tmp.get(n), zeros=self.zeros.get(n), ones=self.ones,
        )

    def layer(self, l: int) -> layers.Buffers:
        """Layer ``l``'s buffers."""
        return self._layers[l]


def parameter_shapes(layer_dims: Sequence[int]) -> dict[str, tuple[int, int]]:
    """``{"W1": (n1, n0), "b1": (n1, 1), ...}`` for ``layer_dims = [n0, ..., nL]``."""
    shapes = {}
    for l in range(1, len(layer_dims)):
        shapes[f"W{l}"] = (layer_dims[l], layer_dims[l - 1])
        shapes[f"b{l}"] = (layer_dims[l], 1)
    return shapes


def flat_views(net: Any, shapes: dict[str, tuple[int, int]]) -> tuple[Array, dict]:
    """One flat array and, for each key, a view of it with that shape (in key order)."""
    xp = net.xp
    total = sum(rows * cols for rows, cols in shapes.values())
    flat = xp.zeros((total,), dtype=net.dtype, device=net.backend.device)
    views, offset = {}, 0
    for key, (rows, cols) in shapes.items():
        views[key] = xp.reshape(flat[offset : offset + rows * cols], (rows, cols))
        offset += rows * cols
    return flat, views


def workspace(net: Any, m: int) -> Workspace | None:
    """The reusable buffers for batches of ``m`` examples, or ``None`` where the
    backend cannot write into buffers (array-api-strict) or ``reuse_buffers`` is off.

    At most two sizes are kept: a mini-batch run has the batch size and the last,
    partial batch.
    """
    if not (net.reuse_buffers and net.backend.supports_out):
        return None
    if net._grads_flat is None:
        shapes = {"d" + k: v for k, v in net.param_shapes().items()}
        net._grads_flat = flat_views(net, shapes)
    cache = net.__dict__.setdefault("_workspaces", {})
    if m not in cache:
        if len(cache) >= 2:
            cache.pop(next(iter(cache)))
        cache[m] = Workspace(net, m)
    return cache[m]


__all__ = ["Parameters", "Workspace", "flat_views", "parameter_shapes", "workspace"]
