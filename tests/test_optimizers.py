"""Update rules against their formulas by hand (NumPy float64), Adam against torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_on_backend

import deepnet as dn
from deepnet import optimizers as opt

SHAPES = {"W1": (4, 3), "b1": (4, 1), "W2": (2, 4), "b2": (2, 1)}
STEPS = 4


def _problem(seed: int = 7):
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    grads = [{"d" + k: rng.standard_normal(s) for k, s in SHAPES.items()} for _ in range(STEPS)]
    return params, grads


def _hand(name: str, params, grads, alpha, **hp):
    """The update rules of DESIGN.md, written out step by step on the host."""
    W = {k: v.copy() for k, v in params.items()}
    v = {k: np.zeros_like(x) for k, x in W.items()}
    s = {k: np.zeros_like(x) for k, x in W.items()}
    out = []
    for t, g in enumerate(grads, start=1):
        for k in W:
            dW = g["d" + k]
            if name == "gd":
                W[k] = W[k] - alpha * dW
            elif name == "momentum":
                v[k] = hp["beta"] * v[k] + (1 - hp["beta"]) * dW
                W[k] = W[k] - alpha * v[k]
            elif name == "rmsprop":
                s[k] = hp["beta2"] * s[k] + (1 - hp["beta2"]) * dW**2
                W[k] = W[k] - alpha * dW / (np.sqrt(s[k]) + hp["epsilon"])
            else:
                v[k] = hp["beta1"] * v[k] + (1 - hp["beta1"]) * dW
                s[k] = hp["beta2"] * s[k] + (1 - hp["beta2"]) * dW**2
                v_hat = v[k] / (1 - hp["beta1"] ** t)
                s_hat = s[k] / (1 - hp["beta2"] ** t)
                W[k] = W[k] - alpha * v_hat / (np.sqrt(s_hat) + hp["epsilon"])
        out.append({k: x.copy() for k, x in W.items()})
    return out


CASES = [
    ("gd", opt.GD, {}),
    ("momentum", opt.Momentum, {"beta": 0.8}),
    ("rmsprop", opt.RMSprop, {"beta2": 0.9, "epsilon": 1e-6}),
    ("adam", opt.Adam, {"beta1": 0.85, "beta2": 0.95, "epsilon": 1e-7}),
]


@pytest.mark.parametrize(("name", "cls", "hp"), CASES, ids=[c[0] for c in CASES])
def test_first_steps_equal_the_formula(backend, name, cls, hp):
    params, grads = _problem()
    alpha = 0.05
    optimizer = cls(learning_rate=alpha, **hp)
    dtype = backend.dtype("float64")
    live = {k: backend.asarray(v, dtype) for k, v in params.items()}
    ids = {k: id(v) for k, v in live.items()}
    expected = _hand(name, params, grads, alpha, **hp)
    for t in range(STEPS):
        optimizer.step(live, {k: backend.asarray(g, dtype) for k, g in grads[t].items()})
        for k in SHAPES:
            got = assert_on_backend(live[k], backend, SHAPES[k], "float64")
            np.testing.assert_allclose(got, expected[t][k], rtol=1e-12, atol=1e-12)
    assert {k: id(v) for k, v in live.items()} == ids, "updates must be in place"
    assert optimizer.t == STEPS
    for slot in optimizer.state.values():
        for state in slot.values():
            assert_on_backend(state, backend, dtype_name="float64")


def test_defaults_follow_the_design():
    assert opt.Momentum().beta == 0.9
    r = opt.RMSprop()
    assert (r.beta2, r.epsilon) == (0.999, 1e-8)
    a = opt.Adam()
    assert (a.beta1, a.beta2, a.epsilon, a.learning_rate) == (0.9, 0.999, 1e-8, 0.001)


def test_adam_matches_torch_step_for_step():
    torch = pytest.importorskip("torch")
    params, grads = _problem(seed=3)
    hp = {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8}
    tparams = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
               for k, v in params.items()}
    torch_opt = torch.optim.Adam(list(tparams.values()), **hp)
    ours = opt.Adam(learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8)
    live = {k: v.copy() for k, v in params.items()}
    for t in range(6):
        g = grads[t % STEPS]
        for k, p in tparams.items():
            p.grad = torch.tensor(g["d" + k] * (t + 1), dtype=torch.float64)
        torch_opt.step()
        ours.step(live, {k: v * (t + 1) for k, v in g.items()})
        for k in SHAPES:
            np.testing.assert_allclose(
                live[k], tparams[k].detach().numpy(), rtol=1e-13, atol=1e-13
            )


def test_get_by_name_and_object():
    assert isinstance(opt.get("adam"), opt.Adam)
    assert isinstance(opt.get("Momentum"), opt.Momentum)
    assert opt.get("rmsprop", 0.5).learning_rate == 0.5
    mine = opt.Adam(learning_rate=0.2, beta1=0.5)
    assert opt.get(mine) is mine and mine.learning_rate == 0.2
    assert opt.get(mine, 0.3).learning_rate == 0.3 and mine.beta1 == 0.5
    with pytest.raises(dn.InputError, match="unknown optimizer 'sgd'"):
        opt.get("sgd")
    with pytest.raises(dn.InputError, match="unknown optimizer"):
        opt.get(3)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: opt.GD(learning_rate=0.0), "learning_rate must be >"),
        (lambda: opt.GD(learning_rate=float("nan")), "learning_rate must be a finite"),
        (lambda: opt.Momentum(beta=1.0), "beta must be <"),
        (lambda: opt.RMSprop(epsilon=0.0), "epsilon must be >"),
        (lambda: opt.Adam(beta2=-0.1), "beta2 must be >="),
        (lambda: opt.get("rmsprop", -1.0), "learning_rate must be >"),
    ],
)
def test_bad_hyperparameters_are_refused(make, match):
    with pytest.raises(dn.InputError, match=match):
        make()


def test_schedules():
    assert opt.InverseTime(decay=0.5)(0.1, 3) == pytest.approx(0.1 / 2.5)
    assert opt.Exponential(rate=0.9)(0.2, 4) == pytest.approx(0.2 * 0.9**4)
    step = opt.Step(drop=0.5, every=3)
    assert [step(1.0, e) for e in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    assert opt.Constant()(0.3, 100) == 0.3
    assert isinstance(opt.get_schedule("inverse_time"), opt.InverseTime)
    assert isinstance(opt.get_schedule(None), opt.Constant)
    with pytest.raises(dn.InputError, match="unknown learning-rate schedule"):
        opt.get_schedule("cosine")
    with pytest.raises(dn.InputError, match="rate must be"):
        opt.Exponential(rate=1.5)


def test_set_epoch_applies_the_schedule_to_the_update():
    optimizer = opt.GD(learning_rate=1.0, schedule=opt.InverseTime(decay=1.0))
    W = {"W1": np.zeros((1, 1))}
    g = {"dW1": np.ones((1, 1))}
    total = 0.0
    for epoch in range(4):
        optimizer.set_epoch(epoch)
        assert optimizer.alpha == pytest.approx(1.0 / (1 + epoch))
        optimizer.step(W, g)
        total -= 1.0 / (1 + epoch)
    assert W["W1"][0, 0] == pytest.approx(total)
    assert math.isclose(optimizer.learning_rate, 1.0)


# -- fused updates, flushing tiny moments, state tied to a network ------------------------


@pytest.mark.parametrize(("name", "cls", "hp"), CASES, ids=[c[0] for c in CASES])
def test_the_fused_update_equals_the_portable_one(backend, dtype_name, name, cls, hp):
    """On the flat parameter array (longer than NumPy's block, so the blocks are used)."""
    from deepnet import fused

    n = fused.NUMPY_BLOCK * 2 + 123
    rng = np.random.default_rng(1)
    W0 = rng.standard_normal(n)
    dtype = backend.dtype(dtype_name)
    results = []
    for use_fused in (True, False):
        optimizer = cls(learning_rate=0.01, fused=use_fused, **hp)
        W = backend.asarray(W0, dtype)
        for t in range(5):
            g = backend.asarray(np.sin(np.arange(n) * (t + 1.0)), dtype)
            optimizer.step({"params": W}, {"dparams": g})
        results.append(assert_on_backend(W, backend, (n,), dtype_name))
    kernel = fused.kernel(name, W)
    if kernel is None and backend.name not in ("array_api_strict",):
        assert name == "gd" or backend.name == "numpy"
    eps = np.finfo(dtype_name).eps
    np.testing.assert_allclose(results[0], results[1], rtol=8 * eps, atol=8 * eps)


@pytest.mark.parametrize("cls", [opt.Momentum, opt.RMSprop, opt.Adam])
def test_moments_never_decay_into_subnormal_numbers(backend, cls):
    """A weight whose gradient is always 0 (an input pixel that is always 0): its
    moments decay by β per step; they are flushed to 0 before they become subnormal."""
    optimizer = cls(learning_rate=0.01)
    dtype = backend.dtype("float32")
    g0 = np.ones(8)
    g0[:4] = 0.0
    W = backend.asarray(np.ones(8), dtype)
    tiny = np.finfo(np.float32).smallest_normal
    optimizer.step({"params": W}, {"dparams": backend.asarray(np.ones(8), dtype)})
    for _ in range(3000):
        optimizer.step({"params": W}, {"dparams": backend.asarray(g0, dtype)})
        for name in optimizer.moments:
            v = np.abs(dn.to_numpy(optimizer.state["params"][name]))
            assert not np.any((v > 0) & (v < tiny)), (name, optimizer.t)
    for name in optimizer.moments:  # the live weights keep their moments
        assert np.all(dn.to_numpy(optimizer.state["params"][name])[4:] > 0)


def test_state_is_tied_to_the_architecture_not_just_the_parameter_count(backend):
    """[3, 5, 1] and [5, 3, 2] both have 26 parameters: one flat array of 26 numbers."""
    rng = np.random.default_rng(0)
    adam = opt.Adam()
    a = dn.DeepNet([3, 5, 1], backend=backend)
    a.fit(rng.random((3, 10)), rng.integers(0, 2, 10), epochs=1, optimizer=adam,
          progress=False)
    b = dn.DeepNet([5, 3, 2], backend=backend)
    with pytest.raises(dn.InputError, match=r"shapes W1 \(5, 3\).*are W1 \(3, 5\)"):
        b.fit(rng.random((5, 10)), (rng.random((2, 10)) > 0.5) * 1.0, epochs=1,
              optimizer=adam, progress=False)
    adam.reset()
    b.fit(rng.random((5, 10)), (rng.random((2, 10)) > 0.5) * 1.0, epochs=1, optimizer=adam,
          progress=False)


def test_a_reused_optimizer_continues_its_schedule(backend):
    rng = np.random.default_rng(0)
    X, y = rng.random((3, 12)), rng.integers(0, 2, 12)
    momentum = opt.Momentum(learning_rate=0.4, schedule=opt.Step(drop=0.5, every=2))
    net = dn.DeepNet([3, 4, 1], backend=backend)
    first = net.fit(X, y, epochs=3, optimizer=momentum, progress=False)
    second = net.fit(X, y, epochs=3, optimizer=momentum, progress=False)
    assert first.learning_rate == [0.4, 0.4, 0.2]
    assert second.learning_rate == [0.2, 0.1, 0.1]
    assert momentum.epochs == 6


def test_each_optimizer_has_its_own_default_learning_rate():
    assert [opt.OPTIMIZERS[n]().learning_rate for n in ("gd", "momentum", "rmsprop", "adam")] \
        == [0.1, 0.1, 0.001, 0.001]
    assert opt.get("gd").learning_rate == 0.1 and opt.get("adam", 0.5).learning_rate == 0.5
