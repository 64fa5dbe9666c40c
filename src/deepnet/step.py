"""One training step: forward, cost, backward, update — the hot loop of ``fit``.

Inputs are already checked and on the network's device; the cost comes back as a 0-d
array on the device, so the caller decides when to read it (once per epoch).
"""

from __future__ import annotations

from deepnet.backend import Array
from deepnet.network import DeepNet
from deepnet.optimizers import Optimizer


def train_step(net: DeepNet, X: Array, Y: Array, optimizer: Optimizer) -> Array:
    """Forward (with dropout), cost from the logits, backward, in-place update.

    Returns the cost of the batch *before* the update, as a 0-d device array.
    """
    AL, caches = net._forward(X, training=True)
    J = net._cost(AL, Y, caches)
    grads = net._backward(AL, Y, caches)
    optimizer.step(net._params, grads)
    return J
