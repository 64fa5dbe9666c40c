"""One training step: forward, cost, backward, update — the hot loop of ``fit``.

Inputs are already checked and on the network's device; the cost comes back as a 0-d
array on the device, so the caller decides when to read it (once per epoch). Where the
backend can write into buffers, the step runs in the network's workspace for this
batch size (``DeepNet._workspace``): the same kernels, no per-step allocations.
"""

from __future__ import annotations

from deepnet.backend import Array
from deepnet.model import Model
from deepnet.optimizers import Optimizer


def train_step(net: Model, X: Array, Y: Array, optimizer: Optimizer) -> Array:
    """Forward (with dropout), cost from the logits, backward, in-place update.

    Returns the cost of the batch *before* the update, as a 0-d device array. Nothing in
    it reads a value back to the host or copies one in (tests/test_device_traffic.py);
    it runs with the network's device current (``Backend.activate``: CuPy needs it).
    """
    with net.backend.activate():
        return _step(net, X, Y, optimizer)


def _step(net: Model, X: Array, Y: Array, optimizer: Optimizer) -> Array:
    ws = net._workspace(X.shape[1])
    AL, caches = net._forward(X, training=True, ws=ws)
    J = net._cost(AL, Y, caches)
    c = optimizer.prescale()
    grads = net._backward(AL, Y, caches, ws=ws, scale=1.0 if c is None else c)
    if ws is not None and net._flat is not None:
        # the gradients were written into views of one flat array: one update for all
        targets, grads = net._update_targets(), {"dparams": ws.grads_flat}
    else:
        targets = net._params
    if c is None:
        optimizer.step(targets, grads)
    else:
        optimizer.step_prescaled(targets, grads)  # GD: W -= α dW, with α already in dW
    return J
