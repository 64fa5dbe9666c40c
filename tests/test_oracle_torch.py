"""PyTorch autograd as an independent oracle for deepnet's costs and gradients.

The same network is rebuilt in plain torch float64 from deepnet's parameters (through
``to_numpy``); its cost is written with torch ops from DESIGN.md's formulas::

    BCE  -(1/m) ΣΣ [y log a + (1-y) log(1-a)],  a = σ(z)
    CE   -(1/m) ΣΣ y log a,                      a = softmax(z)
    MSE   (1/(2m)) ΣΣ (a-y)²,                    a = z
    + (λ/(2m)) Σ ||W[l]||²

with ``log σ(z)``, ``log(1 - σ(z)) = log σ(-z)`` and ``log softmax(z)`` taken from torch's
own stable kernels, and autograd differentiates it. deepnet's cost (from the logits and
from ``A[L]``) and every gradient must equal torch's to 1e-9 relative, on random
architectures drawn by hypothesis, on every deepnet backend; with dropout, the masks
deepnet drew are applied in torch too.

"Relative" is measured where the quantity is well conditioned, which two drawn cases
showed it need not be (both are rounding, identical in the two libraries' formulas):

* a gradient array is compared relative to its own norm, or to ``TINY`` times the norm
  of the whole gradient when it is smaller than that. Behind a saturated tanh or
  sigmoid unit ``g'`` is ``1 - A²`` or ``A (1 - A)`` with ``A`` within ``s`` of 1, whose
  relative rounding is ``u / s`` (``u = 2.2e-16``), in both libraries alike; the arrays
  fed through it are ``~ s`` times the rest, so their error is a few ``u`` of the whole
  gradient, but ``u / s`` of their own size. Found by hypothesis: a tanh at
  ``A = 0.99999992`` put every array below it at ~1e-6 of the whole and 1.7e-9 off
  torch relative to itself, 3e-15 (~15 u) of the whole; another gave ``db2 ≈ 2e-9`` next
  to ``dW5 ≈ 0.4``, 2.3e-9 off relative to itself, 5e-18 absolute (NumPy's and torch's
  ``tanh`` differ in the last bit). With ``TINY = 1e-4`` an array that small may be off
  by 1e-13 of the whole (~450 u), and arrays above it are held to the full 1e-9;
* the cost from ``A[L]`` (``net.cost(AL, Y)`` without caches) takes ``log a`` and
  ``log(1 - a)`` of rounded probabilities: its relative error is ``u / a``. It is held
  to 1e-9 where every probability inside a log is at least ``MIN_PROB``; the cost from
  the logits (with caches), which DESIGN.md makes the stable one, always is.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, target
from hypothesis import strategies as st

import deepnet as dn
from deepnet import activations

torch = pytest.importorskip("torch")

RTOL = 1e-9
TINY = 1e-4
MIN_PROB = 1e-6


@st.composite
def problems(draw):
    """``(layer_dims, hidden, output, m, l2, keep_prob, seed)``."""
    L = draw(st.integers(1, 5))
    output = draw(st.sampled_from(activations.OUTPUT))
    widths = draw(st.lists(st.integers(1, 8), min_size=L, max_size=L))
    nL = draw(st.integers(2 if output == "softmax" else 1, 8))
    hidden = draw(st.lists(st.sampled_from(activations.HIDDEN), min_size=L - 1,
                           max_size=L - 1))
    m = draw(st.integers(1, 16))
    l2 = draw(st.sampled_from([0.0, 0.0, 0.05, 1.0]))
    keep_prob = draw(st.sampled_from([1.0, 1.0, 0.8, 0.5]))
    seed = draw(st.integers(0, 2**32 - 1))
    return [*widths, nL], hidden, output, m, l2, keep_prob, seed


def _labels(output, nL, m, rng):
    if output == "sigmoid":
        return (rng.random((nL, m)) < 0.5).astype(np.float64)
    if output == "softmax":
        return np.eye(nL)[:, rng.integers(0, nL, size=m)]
    return rng.standard_normal((nL, m))


_TORCH_G = {
    "relu": torch.relu,
    "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, negative_slope=0.01),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": lambda z: z,
}


def torch_cost_and_grads(params, X, Y, hidden, output, l2, masks):
    """The cost and ``{"dW1": ..., "db1": ...}`` by torch autograd, in float64."""
    T = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    L, m = len(hidden) + 1, X.shape[1]
    A = torch.tensor(X, dtype=torch.float64)
    for l in range(1, L):
        A = _TORCH_G[hidden[l - 1]](T[f"W{l}"] @ A + T[f"b{l}"])
        if masks[l - 1] is not None:
            A = A * torch.tensor(masks[l - 1], dtype=torch.float64)
    Z = T[f"W{L}"] @ A + T[f"b{L}"]
    y = torch.tensor(Y, dtype=torch.float64)
    if output == "sigmoid":
        log_a = torch.nn.functional.logsigmoid(Z)
        log_1a = torch.nn.functional.logsigmoid(-Z)
        J = -(y * log_a + (1 - y) * log_1a).sum() / m
    elif output == "softmax":
        J = -(y * torch.log_softmax(Z, dim=0)).sum() / m
    else:
        J = ((Z - y) ** 2).sum() / (2 * m)
    J = J + l2 / (2 * m) * sum((T[f"W{l}"] ** 2).sum() for l in range(1, L + 1))
    J.backward()
    return float(J.detach()), {"d" + k: t.grad.numpy() for k, t in T.items()}


def relative(a: np.ndarray, b: np.ndarray, scale: float = 0.0) -> float:
    """``‖a − b‖ / max(‖b‖, scale)`` (0 when they are equal)."""
    num = float(np.linalg.norm(a - b))
    den = max(float(np.linalg.norm(b)), scale, np.finfo(np.float64).tiny)
    return 0.0 if num == 0.0 else num / den


def _probabilities_in_logs(output: str, AL: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """The values whose logs the from-output cost takes (with a nonzero weight)."""
    if output == "sigmoid":
        return np.concatenate([AL[Y > 0], 1.0 - AL[Y < 1]])
    if output == "softmax":
        return AL[Y > 0]
    return np.ones(1)


def compare(backend, dims, hidden, output, m, l2, keep_prob, seed):
    """The worst relative difference of the cost and of the gradients against torch."""
    rng = np.random.default_rng(seed)
    net = dn.DeepNet(dims, hidden=hidden, output=output, l2=l2, keep_prob=keep_prob,
                     dtype="float64", seed=seed, backend=backend)
    params = {k: dn.to_numpy(v) for k, v in net.params.items()}
    for key in params:  # a random point, not only the zero biases of the initialisation
        if key.startswith("b"):
            params[key] = rng.standard_normal(params[key].shape) * 0.5
    net.set_params(params)
    X = rng.standard_normal((dims[0], m))
    Y = _labels(output, dims[-1], m, rng)
    AL, caches = net.forward(X, training=keep_prob < 1.0)
    masks = [None if D is None else dn.to_numpy(D) for _, D in caches]
    J_torch, g_torch = torch_cost_and_grads(params, X, Y, hidden, output, l2, masks)
    grads = net.backward(AL, Y, caches)
    assert set(grads) == set(g_torch)
    costs = [net.cost(AL, Y, caches)]
    if _probabilities_in_logs(output, dn.to_numpy(AL), Y).min() >= MIN_PROB:
        costs.append(net.cost(AL, Y))
    worst_cost = max(abs(J - J_torch) / abs(J_torch) if J != J_torch else 0.0 for J in costs)
    whole = math.sqrt(sum(float(np.sum(t**2)) for t in g_torch.values()))
    worst_grad = max(relative(dn.to_numpy(grads[k]), t, TINY * whole) for k, t in g_torch.items())
    return worst_cost, worst_grad


@given(problem=problems())
def test_costs_and_gradients_equal_torch_autograd(backend, problem):
    worst_cost, worst_grad = compare(backend, *problem)
    # steer the search towards the worst case; --hypothesis-show-statistics prints it
    target(worst_cost, label="cost relative difference")
    target(worst_grad, label="gradient relative difference")
    assert worst_cost < RTOL, (problem, worst_cost)
    assert worst_grad < RTOL, (problem, worst_grad)


@pytest.mark.parametrize("output", activations.OUTPUT)
@pytest.mark.parametrize("hidden", activations.HIDDEN)
def test_every_hidden_with_every_output_equals_torch(backend, hidden, output):
    for l2, keep_prob in ((0.0, 1.0), (0.5, 0.7)):
        worst_cost, worst_grad = compare(backend, [4, 5, 3, 3], [hidden, hidden], output, 7,
                                         l2, keep_prob, seed=23)
        assert worst_cost < RTOL and worst_grad < RTOL, (worst_cost, worst_grad)


def test_the_oracle_sees_a_wrong_gradient(backend, monkeypatch):
    """Control: a leaky_relu backward with slope 0.02 instead of 0.01 is caught."""
    problem = ([3, 6, 2], ["leaky_relu"], "linear", 9, 0.0, 1.0, 31)
    assert compare(backend, *problem)[1] < RTOL

    def slope_002(dA, Z, A, **_):
        xp = dn.backend.array_namespace(A)
        return dA * (0.02 + 0.98 * xp.astype(A > 0, A.dtype))

    wrong = activations.Activation("leaky_relu", activations.leaky_relu, slope_002)
    monkeypatch.setitem(activations.ACTIVATIONS, "leaky_relu", wrong)
    assert compare(backend, *problem)[1] > 1e-4
