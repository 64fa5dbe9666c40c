"""Property-based tests over random architectures, dtypes and data shapes, on every backend.

Hypothesis draws a problem: ``L = 1..4`` layers of 1..5 units, a hidden activation per
layer, the output (sigmoid, softmax with at least two units, linear), the dtype, the
number of examples ``m = 1..6``, ``l2``, the init, the label layout, the scale of the
inputs and a seed. Weights come from the network's own seeded init, biases and data from
``numpy.random.default_rng(seed)`` on the host. The properties:

* forward: ``A[L]`` and every cache have the notes' shapes, the network's dtype and
  device, are finite, and equal a float64 NumPy transcription of the notes;
* finite at any scale: inputs up to ~1e3 keep ``A[L]``, the cost and the gradients finite,
  probabilities in [0, 1], softmax columns summing to 1;
* backward: every ``dW[l]``, ``db[l]`` has the shape of ``W[l]``, ``b[l]`` and equals the
  reference recursion;
* ``gradient_check`` < 1e-7;
* predict follows the output's rule; equivalent label layouts give the same cost and
  gradients; ``fit`` leaves finite parameters and a matching History, reproducibly; a
  checkpoint round trip is bitwise.

ReLU kinks, honestly: relu and leaky_relu are not differentiable at ``Z = 0``. The
gradient check moves one parameter by ε = 1e-7 at a time, which moves any ``Z`` of these
tiny nets (inputs ≤ 3, weights O(1), ≤ 5 units) by well under 1e-5; so where every hidden
relu/leaky_relu pre-activation has ``|Z| > 1e-4`` (in the float64 reference) both
differences stay on one side of every kink and the check is exact up to rounding. Draws
with some ``|Z| ≤ 1e-4`` are rejected (``assume``): there the analytic gradient is a
one-sided derivative and no check can pass, by mathematics rather than by a bug. Such
draws are rare (a few in ten thousand); tanh, sigmoid and linear layers need no such care.

``pytest tests/test_properties.py -s`` prints how many examples each property ran.
"""

from __future__ import annotations

import collections
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_on_backend, tolerance
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st
from test_gradcheck import step_for

import deepnet as dn

COUNTS: collections.Counter = collections.Counter()
HIDDEN = ("relu", "leaky_relu", "tanh", "sigmoid", "linear")
KINKED = ("relu", "leaky_relu")


def _n(examples: int) -> int:
    """``examples`` under the default profile (25), scaled for the others."""
    return max(5, examples * settings().max_examples // 25)


# -- problems --------------------------------------------------------------------------------


@dataclass
class Problem:
    dims: list[int]
    hidden: list[str]
    output: str
    dtype: str
    m: int
    l2: float
    init: str
    layout: str  # "2-D", "1-D" (sigmoid, nL = 1), "labels" or "one-hot" (softmax)
    scale: float
    seed: int

    def net(self, backend) -> dn.DeepNet:
        net = dn.DeepNet(self.dims, hidden=self.hidden or "relu", output=self.output,
                         init=self.init, l2=self.l2, dtype=self.dtype, seed=self.seed,
                         backend=backend)
        rng = np.random.default_rng(self.seed + 1)
        params = {k: dn.to_numpy(v) for k, v in net.params.items()}
        for l in range(1, len(self.dims)):
            params[f"b{l}"] = rng.standard_normal((self.dims[l], 1)) * 0.5
        net.set_params(params)
        return net

    def data(self):
        """``X (n0, m)`` and ``Y`` in this problem's layout, and ``Y`` as ``(nL, m)``."""
        rng = np.random.default_rng(self.seed)
        n0, nL, m = self.dims[0], self.dims[-1], self.m
        X = rng.standard_normal((n0, m)) * self.scale
        if self.output == "sigmoid":
            Y2 = (rng.random((nL, m)) > 0.5).astype(np.float64)
            Y = Y2[0] if self.layout == "1-D" else Y2
        elif self.output == "softmax":
            labels = rng.integers(0, nL, m)
            Y2 = np.eye(nL)[:, labels]
            Y = labels if self.layout == "labels" else Y2
        else:
            Y2 = rng.standard_normal((nL, m))
            Y = Y2
        return X, Y, Y2


@st.composite
def problems(draw, scales=(0.1, 1.0, 3.0)):
    L = draw(st.integers(1, 4), label="L")
    dims = [draw(st.integers(1, 5)) for _ in range(L + 1)]
    output = draw(st.sampled_from(["sigmoid", "softmax", "linear"]), label="output")
    if output == "softmax" and dims[-1] == 1:
        dims[-1] = draw(st.integers(2, 5))  # one softmax unit is the constant 1
    layouts = {"sigmoid": ["2-D", "1-D"] if dims[-1] == 1 else ["2-D"],
               "softmax": ["labels", "one-hot"], "linear": ["2-D"]}[output]
    return Problem(
        dims=dims,
        hidden=[draw(st.sampled_from(HIDDEN)) for _ in range(L - 1)],
        output=output,
        dtype=draw(st.sampled_from(["float32", "float64"]), label="dtype"),
        m=draw(st.integers(1, 6), label="m"),
        l2=draw(st.sampled_from([0.0, 0.0, 0.1]) | st.floats(0.0, 1.0), label="l2"),
        init=draw(st.sampled_from(["he", "xavier", "scaled"])),
        layout=draw(st.sampled_from(layouts)),
        scale=draw(st.sampled_from(scales), label="scale"),
        seed=draw(st.integers(0, 2**32 - 1), label="seed"),
    )


# -- the notes, in float64 NumPy ------------------------------------------------------------


def _g(name, Z):
    if name == "relu":
        return np.maximum(Z, 0.0)
    if name == "leaky_relu":
        return np.where(Z > 0, Z, 0.01 * Z)
    if name == "tanh":
        return np.tanh(Z)
    if name == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * Z))  # σ without overflow
    if name == "softmax":
        E = np.exp(Z - Z.max(axis=0, keepdims=True))
        return E / E.sum(axis=0, keepdims=True)
    return Z


def _g_prime(name, Z, A):
    return {"relu": lambda: (Z > 0).astype(np.float64),
            "leaky_relu": lambda: np.where(Z > 0, 1.0, 0.01),
            "tanh": lambda: 1.0 - A**2,
            "sigmoid": lambda: A * (1.0 - A),
            "linear": lambda: np.ones_like(Z)}[name]()


def reference(params, X, Y2, hidden, output, l2):
    """``(Zs, As, cost, grads)`` by the notes' formulas; cost from the logits."""
    L = len(params) // 2
    acts = [*hidden, output]
    Zs, As = [None], [X]
    for l in range(1, L + 1):
        Z = params[f"W{l}"] @ As[-1] + params[f"b{l}"]
        Zs.append(Z)
        As.append(_g(acts[l - 1], Z))
    m = X.shape[1]
    ZL, AL = Zs[L], As[L]
    if output == "sigmoid":
        cost = np.sum(np.logaddexp(0.0, ZL) - ZL * Y2) / m
    elif output == "softmax":
        zmax = ZL.max(axis=0, keepdims=True)
        lse = zmax + np.log(np.exp(ZL - zmax).sum(axis=0, keepdims=True))
        cost = np.sum(Y2 * (lse - ZL)) / m
    else:
        cost = np.sum((AL - Y2) ** 2) / (2 * m)
    cost += l2 / (2 * m) * sum(np.sum(params[f"W{l}"] ** 2) for l in range(1, L + 1))
    grads = {}
    dZ = AL - Y2
    for l in range(L, 0, -1):
        grads[f"dW{l}"] = dZ @ As[l - 1].T / m + l2 / m * params[f"W{l}"]
        grads[f"db{l}"] = dZ.sum(axis=1, keepdims=True) / m
        if l > 1:
            dA = params[f"W{l}"].T @ dZ
            dZ = dA * _g_prime(acts[l - 2], Zs[l - 1], As[l - 1])
    return Zs, As, float(cost), grads


def _host_params(net):
    return {k: dn.to_numpy(v).astype(np.float64) for k, v in net.params.items()}


def _as_fed(X, dtype):
    """``X`` as the network holds it: cast to its dtype, then widened for the reference."""
    return X.astype(dtype).astype(np.float64)


def _close(got, want, dtype, what):
    tol = tolerance(dtype)
    scale = max(1.0, float(np.max(np.abs(want)))) if np.size(want) else 1.0
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


# -- forward ----------------------------------------------------------------------------------


@settings(max_examples=_n(25))
@given(problem=problems())
def test_forward_shapes_and_values_follow_the_notes(backend, problem):
    net = problem.net(backend)
    X, _, Y2 = problem.data()
    AL, caches = net.forward(X)
    dims, L, m, dt = problem.dims, len(problem.dims) - 1, problem.m, problem.dtype
    Zs, As, _, _ = reference(_host_params(net), _as_fed(X, dt), Y2, problem.hidden,
                             problem.output, problem.l2)
    got = assert_on_backend(AL, backend, (dims[-1], m), dt)
    assert np.all(np.isfinite(got))
    _close(got, As[L], dt, "A[L]")
    assert isinstance(caches, list) and len(caches) == L
    for l, ((linear_cache, Z, A), D) in enumerate(caches, start=1):
        A_prev, W, b = linear_cache
        assert_on_backend(A_prev, backend, (dims[l - 1], m), dt)
        assert_on_backend(W, backend, (dims[l], dims[l - 1]), dt)
        assert_on_backend(b, backend, (dims[l], 1), dt)
        _close(assert_on_backend(Z, backend, (dims[l], m), dt), Zs[l], dt, f"Z[{l}]")
        _close(assert_on_backend(A, backend, (dims[l], m), dt), As[l], dt, f"A[{l}]")
        assert D is None  # no dropout outside training
    COUNTS["forward: shapes and values"] += 1


@settings(max_examples=_n(25))
@given(problem=problems(scales=(1.0, 30.0, 300.0, 1e3)))
def test_outputs_stay_finite_at_any_scale(backend, problem):
    net = problem.net(backend)
    X, Y, _ = problem.data()
    AL, caches = net.forward(X)
    A = dn.to_numpy(AL)
    assert np.all(np.isfinite(A))
    if problem.output in ("sigmoid", "softmax"):
        assert np.all((A >= 0.0) & (A <= 1.0))
    if problem.output == "softmax":
        np.testing.assert_allclose(A.sum(axis=0), 1.0, rtol=0, atol=tolerance(problem.dtype))
    note(f"max |A[L]| = {np.max(np.abs(A)):.3g}")
    cost = net.cost(AL, Y, caches)
    assert math.isfinite(cost) and cost >= 0.0
    if problem.output != "linear":  # from A[L] alone: clipped, never log(0)
        assert math.isfinite(net.cost(AL, Y))
    for k, g in net.backward(AL, Y, caches).items():
        assert np.all(np.isfinite(dn.to_numpy(g))), k
    COUNTS["finite at any scale"] += 1


# -- backward, cost, gradient check ------------------------------------------------------------


@settings(max_examples=_n(25))
@given(problem=problems())
def test_backward_and_cost_follow_the_notes(backend, problem):
    net = problem.net(backend)
    X, Y, Y2 = problem.data()
    AL, caches = net.forward(X)
    dt = problem.dtype
    params = _host_params(net)
    _, _, cost, grads = reference(params, _as_fed(X, dt), Y2, problem.hidden, problem.output,
                                  problem.l2)
    assert net.cost(AL, Y, caches) == pytest.approx(cost, rel=tolerance(dt),
                                                    abs=tolerance(dt))
    got = net.backward(AL, Y, caches)
    assert list(got) == [f"d{k}" for k in net.params]  # dW1, db1, ..., dWL, dbL
    for key, value in got.items():
        shape = tuple(net.params[key[1:]].shape)
        _close(assert_on_backend(value, backend, shape, dt), grads[key], dt, key)
    COUNTS["backward and cost"] += 1


def _min_kinked_margin(problem, net, X):
    """The smallest ``|Z|`` of any relu/leaky_relu layer, in the float64 reference."""
    Zs, _, _, _ = reference(_host_params(net), X, problem.data()[2], problem.hidden,
                            problem.output, problem.l2)
    margins = [np.min(np.abs(Zs[l])) for l, g in enumerate(problem.hidden, start=1)
               if g in KINKED]
    return min(margins, default=math.inf)


@settings(max_examples=_n(25))
@given(problem=problems())
def test_gradient_check_passes(backend, problem):
    net = problem.net(backend)
    X, Y, _ = problem.data()
    assume(_min_kinked_margin(problem, net, X) > 1e-4)  # see the module's docstring
    epsilon = step_for(net, X, Y)  # a saturated output: a larger step, or no check at all
    assume(epsilon is not None)
    # a cost below float64's resolution of its own terms (log(1 + e^-30) = 0 exactly):
    # finite differences see 0 where the gradient is tiny but not 0
    AL, caches = net.forward(X)
    assume(net.cost(AL, Y, caches) > 1e-6)
    difference = dn.gradient_check(net, X, Y, epsilon=epsilon)
    note(f"relative difference {difference:.3g}")
    assert difference < 1e-7
    COUNTS["gradient check < 1e-7"] += 1


# -- predict, label layouts --------------------------------------------------------------------


@settings(max_examples=_n(25))
@given(problem=problems())
def test_predict_follows_the_output_rule(backend, problem):
    net = problem.net(backend)
    X, _, _ = problem.data()
    X = backend.asarray(X, net.dtype)  # predictions follow the input: the backend's
    A = dn.to_numpy(net.predict_proba(X))
    got = net.predict(X)
    nL, m = problem.dims[-1], problem.m
    if problem.output == "sigmoid":
        labels = assert_on_backend(got, backend, (nL, m))
        np.testing.assert_array_equal(labels, (A > 0.5).astype(labels.dtype))
        assert set(np.unique(labels)) <= {0, 1}
    elif problem.output == "softmax":
        labels = assert_on_backend(got, backend, (m,))
        np.testing.assert_array_equal(labels, np.argmax(A, axis=0))
        assert np.all((labels >= 0) & (labels < nL))
    else:
        np.testing.assert_array_equal(assert_on_backend(got, backend, (nL, m)), A)
    COUNTS["predict"] += 1


@settings(max_examples=_n(25))
@given(problem=problems())
def test_label_layouts_are_equivalent(backend, problem):
    net = problem.net(backend)
    X, Y, Y2 = problem.data()
    AL, caches = net.forward(X)
    # the same numbers; only the order of a sum may differ (np.eye(nL)[:, labels] is not
    # C-ordered, and torch reduces such a tensor in another order): rounding, no more
    eps = float(np.finfo(problem.dtype).eps)
    assert net.cost(AL, Y, caches) == pytest.approx(net.cost(AL, Y2, caches), rel=16 * eps,
                                                    abs=16 * eps)
    a, b = net.backward(AL, Y, caches), net.backward(AL, Y2, caches)
    for k in a:
        np.testing.assert_allclose(dn.to_numpy(a[k]), dn.to_numpy(b[k]), rtol=16 * eps,
                                   atol=16 * eps)
    COUNTS["label layouts"] += 1


# -- fit and checkpoints --------------------------------------------------------------------------


@settings(max_examples=_n(15))
@given(problem=problems(), data=st.data())
def test_fit_leaves_finite_parameters_and_a_matching_history(backend, problem, data):
    X, Y, _ = problem.data()
    kwargs = {
        "epochs": data.draw(st.integers(1, 3), label="epochs"),
        "batch_size": data.draw(st.none() | st.integers(1, problem.m), label="batch_size"),
        "optimizer": data.draw(st.sampled_from(["gd", "momentum", "rmsprop", "adam"])),
        "learning_rate": data.draw(st.sampled_from([1e-3, 1e-2, 0.1]), label="α"),
        "seed": data.draw(st.integers(0, 100)),
        "progress": False,
    }
    runs, diverged = [], []
    for _ in range(2):
        net = problem.net(backend)
        try:
            history = net.fit(X, Y, **kwargs)
        except dn.DivergenceError:  # α = 0.1 can diverge (a linear output, scale 3):
            diverged.append(1)      # then the last finite epoch's parameters are kept
            history = net.history
            assert history is None or history.epochs < kwargs["epochs"]
            assert all(np.all(np.isfinite(dn.to_numpy(v))) for v in net.params.values())
            runs.append({k: dn.to_numpy(v) for k, v in net.params.items()})
            continue
        assert net.history is history and history.epochs == kwargs["epochs"]
        assert len(history.cost) == len(history.time) == kwargs["epochs"]
        assert all(math.isfinite(c) for c in history.cost)
        if problem.output != "linear":
            assert len(history.accuracy) == kwargs["epochs"]
        params = {k: assert_on_backend(v, backend, tuple(v.shape), problem.dtype)
                  for k, v in net.params.items()}
        assert all(np.all(np.isfinite(v)) for v in params.values())
        runs.append(params)
    assert len(diverged) in (0, 2)  # the same seed, the same outcome
    for k in runs[0]:  # the same seed, the same network
        np.testing.assert_array_equal(runs[0][k], runs[1][k])
    COUNTS["fit"] += 1


@settings(max_examples=_n(15))
@given(problem=problems())
def test_checkpoints_round_trip_bitwise(backend, problem):
    net = problem.net(backend)
    X, _, _ = problem.data()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.npz"
        net.save(path)
        device = backend.label.split(":", 1)[1] if ":" in backend.label else None
        back = dn.load(path, backend=backend.name, device=device)
        host = dn.load(path, backend="numpy")
    assert back.config() == net.config() == host.config()
    for k, v in net.params.items():
        want = dn.to_numpy(v)
        np.testing.assert_array_equal(assert_on_backend(back.params[k], backend, want.shape,
                                                        problem.dtype), want)
        np.testing.assert_array_equal(dn.to_numpy(host.params[k]), want)
    np.testing.assert_array_equal(dn.to_numpy(back.predict_proba(X)),
                                  dn.to_numpy(net.predict_proba(X)))
    COUNTS["checkpoint round trip"] += 1


def test_zz_report_counts():
    """Print how many examples each property ran (``-s`` shows it)."""
    if not COUNTS:
        pytest.skip("no property test ran in this session")
    lines = [f"{name:<28} {count:5d}" for name, count in sorted(COUNTS.items())]
    lines.append(f"{'all':<28} {sum(COUNTS.values()):5d}")
    print("\nproperty examples that ran (all backends):\n" + "\n".join(lines))
