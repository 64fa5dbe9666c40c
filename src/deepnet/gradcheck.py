"""Finite-difference check of the network's gradients, in float64.

``gradient_check`` rebuilds the network in float64 on its own backend and device, then
perturbs every entry of every parameter in place on the device (``W[i, j] ± ε``), so no
array crosses to the host except the costs. Dropout is off during the check: the masks
are random, so a cost with dropout is not a differentiable function of the parameters.
"""

from __future__ import annotations

import math
from typing import Any

from deepnet.backend import to_numpy
from deepnet.model import Model


def gradient_check(net: Model, X: Any, Y: Any, epsilon: float = 1e-7) -> float:
    """The notes' gradient check: ``‖g − g_num‖ / (‖g‖ + ‖g_num‖)`` over every parameter.

    ``g`` is the backward pass's gradient (L2 term included) and ``g_num`` the central
    difference ``(J(θ + ε) − J(θ − ε)) / (2ε)`` of each parameter entry ``θ``. Both are
    computed in float64 on a copy of the network, whatever ``net``'s dtype, with dropout
    off; ``net`` itself is not changed. It costs two forward passes per parameter entry:
    use a small ``X``.

    Parameters
    ----------
    net : DeepNet
        The network whose backward pass is checked.
    X : array (n0, m)
        Examples in columns, of any supported library.
    Y : array (nL, m), or (m,) labels
        Labels in any layout :meth:`DeepNet.cost` accepts.
    epsilon : float
        The step ``ε``, in (0, 1).

    Returns
    -------
    float
        The relative difference; below about 1e-7 the backward pass is right.

    Examples
    --------
    >>> import numpy as np, deepnet as dn
    >>> X = np.random.default_rng(0).standard_normal((3, 8))
    >>> Y = (X[0] > 0).astype(int)
    >>> dn.gradient_check(dn.DeepNet([3, 4, 1], seed=0), X, Y) < 1e-7
    True
    """
    from deepnet.checks import real_number
    from deepnet.errors import InputError

    if not isinstance(net, Model):
        raise InputError(f"gradient_check needs a deepnet.DeepNet; got {type(net).__name__}")
    epsilon = real_number(epsilon, "epsilon", low=0.0, high=1.0, low_open=True)
    twin = type(net)(
        net.layer_dims, hidden=net.hidden, output=net.output, init=net.init, l2=net.l2,
        keep_prob=1.0, dtype="float64", seed=0, backend=net.backend,
    )
    twin.set_params(net.params)
    X = twin._check_X(X)
    Y = twin._check_Y(Y, X.shape[1])

    def cost() -> float:
        AL, caches = twin._forward(X)
        return float(twin._cost(AL, Y, caches))

    with twin.backend.quiet_float_errors():  # an overflow is reported below, as an error
        AL, caches = twin._forward(X)
        base = float(twin._cost(AL, Y, caches))
        grads = twin._backward(AL, Y, caches)
        analytic, numeric = [], []
        for key, theta in twin._params.items():
            dtheta = to_numpy(grads["d" + key])
            rows, cols = theta.shape
            for i in range(rows):
                for j in range(cols):
                    original = float(theta[i, j])
                    theta[i, j] = original + epsilon
                    plus = cost()
                    theta[i, j] = original - epsilon
                    minus = cost()
                    theta[i, j] = original
                    numeric.append((plus - minus) / (2 * epsilon))
                    analytic.append(float(dtheta[i, j]))
    values = [base, *analytic, *numeric]
    if not all(math.isfinite(v) for v in values):
        raise InputError(
            f"gradient_check: the cost or a gradient is not finite at these inputs in float64 "
            f"(cost {base:g}): the values of X overflow the network's activations; scale "
            "them (e.g. to [0, 1], or zero mean and unit variance)"
        )
    scale = max((abs(v) for v in analytic + numeric), default=0.0)
    if scale == 0.0:
        return 0.0
    # the norms of scaled values: gradients of 1e200 would overflow their squares
    diff = math.sqrt(math.fsum(((a - b) / scale) ** 2 for a, b in zip(analytic, numeric)))
    norm_g = math.sqrt(math.fsum((a / scale) ** 2 for a in analytic))
    norm_n = math.sqrt(math.fsum((b / scale) ** 2 for b in numeric))
    return diff / (norm_g + norm_n)


__all__ = ["gradient_check"]
