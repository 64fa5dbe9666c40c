"""activations: each forward and its backward against NumPy float64 references."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_on_backend, tolerance

import deepnet as dn
from deepnet import activations

NAMES = list(activations.ACTIVATIONS)
ELEMENTWISE = [n for n in NAMES if n != "softmax"]
KINKED = ("relu", "leaky_relu")


# -- NumPy float64 references, written independently of the library ------------------------


def _sigmoid_ref(z: np.ndarray) -> np.ndarray:
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    e = np.exp(z[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def _softmax_ref(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def forward_ref(name: str, z: np.ndarray) -> np.ndarray:
    return {
        "relu": lambda: np.maximum(z, 0.0),
        "leaky_relu": lambda: np.where(z > 0, z, 0.01 * z),
        "tanh": lambda: np.tanh(z),
        "sigmoid": lambda: _sigmoid_ref(z),
        "softmax": lambda: _softmax_ref(z),
        "linear": lambda: z.copy(),
    }[name]()


def backward_ref(name: str, dA: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``dZ`` from ``dA``: elementwise ``dA * g'(z)``; the full Jacobian for softmax."""
    if name == "softmax":
        a = _softmax_ref(z)
        dZ = np.empty_like(z)
        for j in range(z.shape[1]):
            jac = np.diag(a[:, j]) - np.outer(a[:, j], a[:, j])  # d a_i / d z_k
            dZ[:, j] = jac.T @ dA[:, j]
        return dZ
    derivative = {
        "relu": lambda: (z > 0).astype(np.float64),
        "leaky_relu": lambda: np.where(z > 0, 1.0, 0.01),
        "tanh": lambda: 1.0 - np.tanh(z) ** 2,
        "sigmoid": lambda: _sigmoid_ref(z) * (1.0 - _sigmoid_ref(z)),
        "linear": lambda: np.ones_like(z),
    }[name]()
    return dA * derivative


def _draw(rng, shape, dtype_name, scale=3.0):
    """A host array of ``dtype_name`` and its float64 copy (the reference's input)."""
    host = (rng.standard_normal(shape) * scale).astype(dtype_name)
    return host, host.astype(np.float64)


# -- the table -------------------------------------------------------------------------------


def test_every_activation_has_a_backward_with_matching_name():
    assert set(NAMES) == {"relu", "leaky_relu", "tanh", "sigmoid", "softmax", "linear"}
    for name, act in activations.ACTIVATIONS.items():
        assert act.name == name
        assert act.forward is getattr(activations, name)
        assert act.backward is getattr(activations, f"{name}_backward")
        assert act.forward.__name__ == name
        assert act.backward.__name__ == f"{name}_backward"
    assert set(activations.HIDDEN) == set(NAMES) - {"softmax"}
    assert set(activations.OUTPUT) == {"sigmoid", "softmax", "linear"}


def test_leaky_slope_is_one_hundredth():
    assert activations.LEAKY_SLOPE == 0.01


def test_get_refuses_unknown_names():
    with pytest.raises(dn.InputError) as info:
        activations.get("swish")
    message = str(info.value)
    assert "swish" in message
    for name in NAMES:
        assert name in message
    with pytest.raises(dn.InputError, match="cannot be used here"):
        activations.get("softmax", allowed=activations.HIDDEN)
    with pytest.raises(dn.InputError, match="unknown activation"):
        activations.get(None)
    assert activations.get(activations.ACTIVATIONS["tanh"]).name == "tanh"


# -- forward and backward on every backend ------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_numpy(backend, dtype_name, rng, name):
    host, z64 = _draw(rng, (5, 7), dtype_name)
    Z = backend.asarray(host, backend.dtype(dtype_name))
    A = activations.ACTIVATIONS[name].forward(Z)
    got = assert_on_backend(A, backend, shape=(5, 7), dtype_name=dtype_name)
    tol = tolerance(dtype_name)
    np.testing.assert_allclose(got, forward_ref(name, z64), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", NAMES)
def test_backward_matches_numpy(backend, dtype_name, rng, name):
    host, z64 = _draw(rng, (5, 7), dtype_name)
    dA_host, dA64 = _draw(rng, (5, 7), dtype_name, scale=1.0)
    act = activations.ACTIVATIONS[name]
    dt = backend.dtype(dtype_name)
    Z = backend.asarray(host, dt)
    dZ = act.backward(backend.asarray(dA_host, dt), Z, act.forward(Z))
    got = assert_on_backend(dZ, backend, shape=(5, 7), dtype_name=dtype_name)
    tol = tolerance(dtype_name)
    np.testing.assert_allclose(got, backward_ref(name, dA64, z64), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", KINKED)
def test_kinked_backward_at_zero_and_sign(backend, name):
    """At ``Z = 0`` the subgradient used is the left one (0 for relu, 0.01 for leaky)."""
    z = np.array([[-2.0, -1e-30, 0.0, 1e-30, 2.0]])
    dt = backend.dtype("float64")
    Z = backend.asarray(z, dt)
    act = activations.ACTIVATIONS[name]
    dZ = act.backward(backend.asarray(np.ones_like(z), dt), Z, act.forward(Z))
    slope = 0.0 if name == "relu" else 0.01
    np.testing.assert_array_equal(dn.to_numpy(dZ), [[slope, slope, slope, 1.0, 1.0]])
    np.testing.assert_array_equal(dn.to_numpy(act.forward(Z)), forward_ref(name, z))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_derivative_matches_finite_differences(backend, rng, name):
    z = rng.standard_normal((4, 6)) * 2.0
    if name in KINKED:  # the finite difference is meaningless across the kink
        z = np.where(np.abs(z) < 0.1, z + np.sign(z) * 0.1 + (z == 0) * 0.1, z)
    h = 1e-6
    dt = backend.dtype("float64")
    act = activations.ACTIVATIONS[name]
    plus = dn.to_numpy(act.forward(backend.asarray(z + h, dt)))
    minus = dn.to_numpy(act.forward(backend.asarray(z - h, dt)))
    numeric = (plus - minus) / (2 * h)
    Z = backend.asarray(z, dt)
    analytic = dn.to_numpy(act.backward(backend.asarray(np.ones_like(z), dt), Z, act.forward(Z)))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-8)


def test_softmax_backward_matches_finite_differences(backend, rng):
    """``softmax_backward(dA)`` is the gradient of ``Σ dA * softmax(Z)`` with respect to Z."""
    z = rng.standard_normal((4, 3)) * 2.0
    dA = rng.standard_normal((4, 3))
    dt = backend.dtype("float64")
    h = 1e-6

    def f(zz):
        return float(np.sum(dA * dn.to_numpy(activations.softmax(backend.asarray(zz, dt)))))

    numeric = np.zeros_like(z)
    for idx in np.ndindex(*z.shape):
        step = np.zeros_like(z)
        step[idx] = h
        numeric[idx] = (f(z + step) - f(z - step)) / (2 * h)
    Z = backend.asarray(z, dt)
    analytic = activations.softmax_backward(backend.asarray(dA, dt), Z, activations.softmax(Z))
    np.testing.assert_allclose(dn.to_numpy(analytic), numeric, rtol=1e-7, atol=1e-8)


# -- stability at |z| up to 1e4 -------------------------------------------------------------

EXTREME = np.array([-1e4, -1e3, -100.0, -80.0, -30.0, -1.0, 0.0, 1.0, 30.0, 80.0, 100.0, 1e3, 1e4])


def test_sigmoid_is_stable_at_extreme_logits(backend, dtype_name):
    z = EXTREME.astype(dtype_name).reshape(1, -1)
    dt = backend.dtype(dtype_name)
    Z = backend.asarray(z, dt)
    A = activations.sigmoid(Z)
    got = assert_on_backend(A, backend, shape=z.shape, dtype_name=dtype_name)
    assert np.all(np.isfinite(got))
    assert np.all((got >= 0.0) & (got <= 1.0))
    assert got[0, 0] == 0.0 and got[0, -1] == 1.0
    assert got[0, 6] == 0.5
    tiny = float(np.finfo(dtype_name).tiny)
    np.testing.assert_allclose(
        got, _sigmoid_ref(z.astype(np.float64)), rtol=tolerance(dtype_name), atol=tiny
    )
    dZ = activations.sigmoid_backward(backend.asarray(np.ones_like(z), dt), Z, A)
    assert np.all(np.isfinite(dn.to_numpy(dZ)))


def test_softmax_is_stable_at_extreme_logits(backend, dtype_name):
    z = np.array(
        [
            [1e4, 1e4, -1e4, 1e4, 0.0, -1e3],
            [-1e4, 1e4, -1e4, 9999.0, 0.0, 1e3],
            [0.0, -1e4, -1e4, 0.0, 1e4, -1e4],
        ]
    ).astype(dtype_name)
    dt = backend.dtype(dtype_name)
    Z = backend.asarray(z, dt)
    A = activations.softmax(Z)
    got = assert_on_backend(A, backend, shape=z.shape, dtype_name=dtype_name)
    assert np.all(np.isfinite(got))
    tol = tolerance(dtype_name)
    np.testing.assert_allclose(got.sum(axis=0), np.ones(z.shape[1]), rtol=tol)
    np.testing.assert_allclose(got, _softmax_ref(z.astype(np.float64)), rtol=tol, atol=tol)
    np.testing.assert_array_equal(got[:, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(got[:, 2], [1 / 3, 1 / 3, 1 / 3], rtol=tol)
    dZ = activations.softmax_backward(backend.asarray(np.ones_like(z), dt), Z, A)
    assert np.all(np.isfinite(dn.to_numpy(dZ)))


@pytest.mark.parametrize("name", ["tanh", "relu", "leaky_relu", "linear"])
def test_other_activations_are_finite_at_extreme_inputs(backend, dtype_name, name):
    z = EXTREME.astype(dtype_name).reshape(1, -1)
    Z = backend.asarray(z, backend.dtype(dtype_name))
    got = dn.to_numpy(activations.ACTIVATIONS[name].forward(Z))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, forward_ref(name, z.astype(np.float64)), rtol=1e-6)
