"""gradcheck: central differences agree with backward on random architectures.

The architectures are drawn by hypothesis: 1–5 layers, widths 1–8, m 1–16, every hidden
activation, all three outputs, with and without L2. Two choices keep the finite
difference honest at the kinks of relu and leaky_relu (where it is simply not the
derivative, whatever backward does):

* the check runs at a random point of parameter space: ``b`` is drawn too, not left at
  its initial zeros. At ``b = 0`` a layer whose inputs are all zero (every relu of the
  layer before dead, common at widths 1–2) has ``Z = 0`` exactly, on the kink, and the
  central difference there sees the average of the two one-sided slopes;
* examples with some relu/leaky_relu ``|Z|`` below ``KINK_MARGIN`` are rejected with
  ``assume``: a perturbation of ``ε = 1e-7`` moves ``Z`` by at most about ``1e-6``
  here (weights and activations are O(1)), so beyond ``1e-5`` no difference straddles
  a kink. This rejects well under 1% of the draws.

``test_finite_differences_fail_exactly_at_a_kink`` shows the failure those two avoid.

The other limit of a finite difference is rounding: each cost carries an error of about
``u |J|`` (``u = 2.2e-16``), so the central difference carries ``~ u |J| / ε`` per entry
and the relative difference has a floor of about
``sqrt(P) u |J| / (2 sqrt(2) ε ‖g‖)`` for ``P`` parameters (with ``|J|`` taken as at least
``½``: a saturated output's cost, ``-log p`` with ``p`` near 1, carries an error of order
``u`` however small it is). Measured over 1500 draws the
returned difference was 0.4 (median) to 0.97 (worst) of this estimate, never above it:
what remains is rounding, not a wrong gradient. When the gradient is small next to the
cost (narrow sigmoid/tanh stacks, a BCE near log 2) the floor at ``ε = 1e-7`` passes
``1e-7`` (about 11% of the draws are above ``BOUND / 4``); the check then takes the
smallest of ``1e-6``, ``1e-5`` that brings the floor under ``BOUND / 2`` (the truncation
error, ``O(ε²)``, is still far below the bound there), and hypothesis reports how often
with ``event``. The bound itself is never moved; the torch oracle checks every draw at
1e-9 with no such floor.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, event, given, target
from hypothesis import strategies as st

import deepnet as dn
from deepnet import activations
from deepnet.network import DeepNet

BOUND = 1e-7
KINK_MARGIN = 1e-5
KINKED = ("relu", "leaky_relu")


@st.composite
def architectures(draw):
    """``(layer_dims, hidden, output, m, l2, seed)`` as the issue describes."""
    L = draw(st.integers(1, 5))
    output = draw(st.sampled_from(activations.OUTPUT))
    n_hidden = draw(st.lists(st.integers(1, 8), min_size=L, max_size=L))  # n0..n[L-1]
    nL = draw(st.integers(2 if output == "softmax" else 1, 8))
    hidden = draw(st.lists(st.sampled_from(activations.HIDDEN), min_size=L - 1,
                           max_size=L - 1))
    m = draw(st.integers(1, 16))
    l2 = draw(st.sampled_from([0.0, 0.0, 0.05, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    return [*n_hidden, nL], hidden, output, m, l2, seed


def labels_for(output, nL, m, rng):
    if output == "sigmoid":
        return (rng.random((nL, m)) < 0.5).astype(np.float64)
    if output == "softmax":
        return rng.integers(0, nL, size=m)  # integer labels; one-hot is tested elsewhere
    return rng.standard_normal((nL, m))


def random_problem(backend, dims, hidden, output, m, l2, seed, dtype="float64", **kw):
    """A network at a random point (W as initialised, b ~ N(0, 0.5²)) and its data."""
    rng = np.random.default_rng(seed)
    net = dn.DeepNet(dims, hidden=hidden, output=output, l2=l2, dtype=dtype, seed=seed,
                     backend=backend, **kw)
    params = {k: dn.to_numpy(v).astype(np.float64) for k, v in net.params.items()}
    for key in params:
        if key.startswith("b"):
            params[key] = rng.standard_normal(params[key].shape) * 0.5
    net.set_params(params)
    X = rng.standard_normal((dims[0], m))
    Y = labels_for(output, dims[-1], m, rng)
    return net, X, Y


def _numpy_twin(net) -> DeepNet:
    twin = DeepNet(net.layer_dims, hidden=net.hidden, output=net.output, l2=net.l2,
                   dtype="float64", backend="numpy")
    twin.set_params({k: dn.to_numpy(v) for k, v in net.params.items()})
    return twin


def min_kink_distance(net, X) -> float:
    """The smallest ``|Z[l]|`` over the relu/leaky_relu layers (inf when there are none)."""
    _, caches = _numpy_twin(net).forward(X)
    distances = [np.abs(dn.to_numpy(cache[1])).min()
                 for (cache, _), g in zip(caches, net.hidden) if g in KINKED]
    return float(min(distances, default=np.inf))


def rounding_floor(net, X, Y, epsilon: float) -> float:
    """The relative difference rounding alone gives a central difference of step
    ``epsilon``: ``sqrt(P) u max(|J|, ½) / (2 sqrt(2) epsilon ‖g‖)`` (see the module's
    notes)."""
    twin = _numpy_twin(net)
    AL, caches = twin.forward(X)
    grads = twin.backward(AL, Y, caches)
    # the cost's own terms (log p with p near 1) are of order 1 even where J is tiny (a
    # saturated softmax, J = 2.5e-6, gave 2.8e-5 at ε = 1e-7): taken as u·max(|J|, ½)
    J = max(abs(twin.cost(AL, Y, caches)), 0.5)
    norm = math.sqrt(sum(float(np.sum(dn.to_numpy(g) ** 2)) for g in grads.values()))
    P = sum(int(np.prod(g.shape)) for g in grads.values())
    u = float(np.finfo(np.float64).eps)
    return math.inf if norm == 0.0 else math.sqrt(P) * u * J / (2 * math.sqrt(2) * epsilon * norm)


def step_for(net, X, Y) -> float | None:
    """The default ``1e-7``, or the smallest larger step whose rounding floor is under
    ``BOUND / 2``; None when even ``1e-5`` is not enough."""
    for epsilon in (1e-7, 1e-6, 1e-5):
        if rounding_floor(net, X, Y, epsilon) < BOUND / 2:
            return epsilon
    return None


@given(arch=architectures())
def test_gradient_check_on_random_architectures(backend, arch):
    net, X, Y = random_problem(backend, *arch)
    assume(min_kink_distance(net, X) > KINK_MARGIN)
    epsilon = step_for(net, X, Y)
    assume(epsilon is not None)
    event(f"epsilon = {epsilon:g}")
    difference = dn.gradient_check(net, X, Y, epsilon=epsilon)
    # steer the search towards the worst case; --hypothesis-show-statistics prints it
    target(difference, label="gradient_check relative difference")
    assert difference < BOUND, (arch, difference)


@pytest.mark.parametrize("output", activations.OUTPUT)
@pytest.mark.parametrize("hidden", activations.HIDDEN)
def test_gradient_check_every_hidden_with_every_output(backend, hidden, output):
    """Every pairing at least once, whatever hypothesis draws; with and without L2."""
    for l2 in (0.0, 0.5):
        net, X, Y = random_problem(backend, [3, 4, 3, 2], hidden, output, 5, l2, seed=17)
        assert min_kink_distance(net, X) > KINK_MARGIN
        assert rounding_floor(net, X, Y, 1e-7) < BOUND / 2  # the default step is fine here
        assert dn.gradient_check(net, X, Y) < BOUND


def test_gradient_check_of_a_float32_network_runs_in_float64(backend):
    net, X, Y = random_problem(backend, [4, 5, 3], ["tanh"], "softmax", 6, 0.1, seed=3,
                               dtype="float32")
    before = {k: dn.to_numpy(v).copy() for k, v in net.params.items()}
    difference = dn.gradient_check(net, X, Y)
    assert isinstance(difference, float)
    assert difference < BOUND
    for key, value in before.items():  # the network itself is left untouched
        np.testing.assert_array_equal(dn.to_numpy(net.params[key]), value)
        assert dn.to_numpy(net.params[key]).dtype == np.float32


def test_gradient_check_turns_dropout_off(backend):
    net, X, Y = random_problem(backend, [4, 6, 1], ["tanh"], "sigmoid", 8, 0.0, seed=4,
                               keep_prob=0.5)
    assert dn.gradient_check(net, X, Y) < BOUND


def test_gradient_check_detects_a_wrong_backward(backend, monkeypatch):
    """Control: a backward that forgets the L2 term, or scales a gradient, is caught."""
    net, X, Y = random_problem(backend, [3, 4, 2], ["tanh"], "sigmoid", 6, 1.0, seed=5)
    assert dn.gradient_check(net, X, Y) < BOUND
    original = DeepNet._backward

    def forgets_l2(self, AL, Y, caches, *args, **kwargs):
        grads = original(self, AL, Y, caches, *args, **kwargs)
        m = AL.shape[1]
        return {k: (g - (self.l2 / m) * self._params["W" + k[2:]] if k.startswith("dW") else g)
                for k, g in grads.items()}

    monkeypatch.setattr(DeepNet, "_backward", forgets_l2)
    assert dn.gradient_check(net, X, Y) > 1e-3

    def scaled(self, AL, Y, caches, *args, **kwargs):
        grads = original(self, AL, Y, caches, *args, **kwargs)
        grads["db1"] = grads["db1"] * 1.1
        return grads

    monkeypatch.setattr(DeepNet, "_backward", scaled)
    assert dn.gradient_check(net, X, Y) > 1e-4


def test_finite_differences_fail_exactly_at_a_kink(backend):
    """Why the module draws ``b`` and keeps away from kinks: at ``Z = 0`` exactly the
    central difference is the mean of relu's two slopes, not its (left) derivative."""
    net = dn.DeepNet([1, 1, 1], hidden="relu", output="linear", dtype="float64",
                     backend=backend)
    net.set_params({"W1": np.array([[1.0]]), "b1": np.array([[0.0]]),
                    "W2": np.array([[1.0]]), "b2": np.array([[0.0]])})
    X = np.array([[0.0]])  # Z[1] = 0: on the kink
    Y = np.array([[1.0]])
    assert dn.gradient_check(net, X, Y) > 1e-2
    X = np.array([[0.5]])  # away from it, the same network checks out
    assert dn.gradient_check(net, X, Y) < BOUND


def test_a_small_gradient_meets_the_rounding_floor(backend):
    """A drawn case (hypothesis found it): every gradient is ~1e-3 next to a cost of
    0.69, so at ``ε = 1e-7`` rounding alone gives a few 1e-7; the difference then falls
    tenfold per tenfold larger step, the signature of rounding (truncation would grow)."""
    net, X, Y = random_problem(backend, [4, 1, 1, 1], ["tanh", "sigmoid"], "sigmoid", 16, 0.0,
                               seed=333663)
    floor = rounding_floor(net, X, Y, 1e-7)
    assert floor > BOUND
    at_7, at_6, at_5 = (dn.gradient_check(net, X, Y, epsilon=e) for e in (1e-7, 1e-6, 1e-5))
    assert at_7 < floor
    assert at_5 < at_6 < at_7
    assert step_for(net, X, Y) == 1e-5 and at_5 < BOUND / 10


def test_gradient_check_refuses_bad_arguments(backend):
    net, X, Y = random_problem(backend, [3, 2], [], "sigmoid", 4, 0.0, seed=6)
    for bad in (0.0, -1e-7, float("nan")):
        with pytest.raises(dn.InputError, match="epsilon"):
            dn.gradient_check(net, X, Y, epsilon=bad)
    with pytest.raises(dn.ShapeError, match=r"X\.T"):
        dn.gradient_check(net, X.T, Y)
    with pytest.raises(dn.ShapeError, match=r"\(nL, m\) = \(2, 4\)"):
        dn.gradient_check(net, X, Y[:, :3])


def test_inputs_that_overflow_are_refused_and_huge_gradients_do_not(backend):
    """A fuzz find: X of 1e154 overflowed the check's sums (OverflowError, warnings)."""
    net = dn.DeepNet([2, 8, 8, 1], output="linear", dtype="float64", backend=backend)
    with pytest.raises(dn.InputError, match="not finite at these inputs"):
        dn.gradient_check(net, np.full((2, 3), 1.2e200), np.zeros((1, 3)))
    big = dn.gradient_check(net, np.full((2, 3), 1e100), np.zeros((1, 3)))
    assert 0.0 <= big < 1e-6  # gradients of ~1e200: their squares would overflow
