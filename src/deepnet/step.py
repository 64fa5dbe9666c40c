"""One training step: forward, cost, backward, update — the hot loop of ``fit``.

Inputs are already checked and on the network's device; the cost comes back as a 0-d
array on the device, so the caller decides when to read it (once per epoch). Where the
backend can write into buffers, the step runs in the network's workspace for this
batch size (``Model._workspace``): the same kernels, no per-step allocations.

A batch may come in **parts** (:func:`step`): the columns of one mini-batch streamed in
chunks, or one process's share of it in data-parallel training. Each part's gradient is
its share of the batch's (``Σ / m`` over the whole batch's ``m``); the shares are summed
— over the parts here, over the processes by the communicator's one all-reduce — and
only then the L2 term and the update are applied, once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from deepnet.backend import Array
from deepnet.model import Model
from deepnet.optimizers import Optimizer

Part = tuple[Array, Array, int]  # (X (n0, b), Y (nL, b), offset of the first column)


def train_step(net: Model, X: Array, Y: Array, optimizer: Optimizer) -> Array:
    """Forward (with dropout), cost from the logits, backward, in-place update.

    Returns the cost of the batch *before* the update, as a 0-d device array. Nothing in
    it reads a value back to the host or copies one in (tests/test_device_traffic.py).
    """
    return step(net, [(X, Y, 0)], optimizer, X.shape[1])[0]


def step(
    net: Model,
    parts: Sequence[Part],
    optimizer: Optimizer,
    m: int,
    *,
    metric: Callable[[Array, Array], Array] | None = None,
    comm: Any = None,
) -> tuple[Array, Array | None]:
    """One update from a batch of ``m`` examples given as ``parts``.

    Returns the batch's cost before the update and, with ``metric``, the sum of
    ``metric(A[L], Y)`` over the parts (both 0-d device arrays; with ``comm``, this
    process's parts only for the metric, every process's for the cost).

    It runs with the network's device current (``Backend.activate``: CuPy runs kernels
    on the current device). One dropout key is drawn for the whole step, so that every
    part (and every process, from the same seed) gets its columns of the same masks.
    """
    with net.backend.activate():
        return _step(net, parts, optimizer, m, metric, comm)


def _step(net, parts, optimizer, m, metric, comm):
    c = optimizer.prescale()
    scale = 1.0 if c is None else c
    J = total = None
    accumulated = None
    key = net._dropout_key()
    for i, (X, Y, offset) in enumerate(parts):
        ws = net._workspace(X.shape[1])
        AL, caches = net._forward(X, training=True, ws=ws, offset=offset, key=key)
        Jp = net._cost(AL, Y, caches, m=m, l2=False)
        J = Jp if J is None else J + Jp
        if metric is not None:
            value = metric(AL, Y)
            total = value if total is None else total + value
        grads = net._backward(AL, Y, caches, ws=ws, scale=scale, m=m, l2=False)
        if len(parts) > 1:
            accumulated = _accumulate(accumulated, grads, i == len(parts) - 1)
        flat = ws.grads_flat if ws is not None and net._flat is not None else None
    if comm is not None and comm.size > 1:
        J = comm.allreduce_step(grads, flat, J)
    if net.l2 > 0.0:
        J = J + net._l2_cost(m)
        net._add_l2(grads, scale, m)
    if flat is not None:
        # the gradients were written into views of one flat array: one update for all
        targets, grads = net._update_targets(), {"dparams": flat}
    else:
        targets = net._params
    if c is None:
        optimizer.step(targets, grads)
    else:
        optimizer.step_prescaled(targets, grads)  # GD: W -= α dW, with α already in dW
    return J, total


def _accumulate(sums: dict | None, grads: dict[str, Array], last: bool) -> dict:
    """Add one part's gradients to ``sums`` (copies of the first part's); at the last
    part, write the sums back into ``grads``' arrays (the workspace the update reads)."""
    if sums is None:
        from deepnet.backend import array_namespace

        return {k: array_namespace(g).asarray(g, copy=True) for k, g in grads.items()}
    for key, g in grads.items():
        sums[key] += g
    if last:
        for key, g in grads.items():
            g[...] = sums[key]
    return sums


__all__ = ["Part", "step", "train_step"]
