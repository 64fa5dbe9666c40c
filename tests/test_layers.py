"""layers: linear and dense kernels, forward and backward, against NumPy references."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_on_backend, tolerance
from test_activations import backward_ref, forward_ref

import deepnet as dn
from deepnet import activations

N_PREV, N, M = 4, 3, 6


def _inputs(rng, dtype_name, m=M):
    """Host float64 copies (exactly representable in ``dtype_name``) of A_prev, W, b, dZ."""
    def draw(*shape):
        return rng.standard_normal(shape).astype(dtype_name).astype(np.float64)

    return draw(N_PREV, m), draw(N, N_PREV), draw(N, 1), draw(N, m)


def _move(backend, dtype_name, *hosts):
    dt = backend.dtype(dtype_name)
    return [backend.asarray(h, dt) for h in hosts]


def test_linear_forward(backend, dtype_name, rng):
    a, w, b, _ = _inputs(rng, dtype_name)
    A_prev, W, bb = _move(backend, dtype_name, a, w, b)
    Z, cache = dn.linear_forward(A_prev, W, bb)
    got = assert_on_backend(Z, backend, shape=(N, M), dtype_name=dtype_name)
    tol = tolerance(dtype_name)
    np.testing.assert_allclose(got, w @ a + b, rtol=tol, atol=tol)
    assert len(cache) == 3
    assert cache[0] is A_prev and cache[1] is W and cache[2] is bb


def test_linear_backward(backend, dtype_name, rng):
    a, w, b, dz = _inputs(rng, dtype_name)
    A_prev, W, bb, dZ = _move(backend, dtype_name, a, w, b, dz)
    _, cache = dn.linear_forward(A_prev, W, bb)
    dA_prev, dW, db = dn.linear_backward(dZ, cache)
    tol = tolerance(dtype_name)
    got = assert_on_backend(dA_prev, backend, shape=(N_PREV, M), dtype_name=dtype_name)
    np.testing.assert_allclose(got, w.T @ dz, rtol=tol, atol=tol)
    got = assert_on_backend(dW, backend, shape=(N, N_PREV), dtype_name=dtype_name)
    np.testing.assert_allclose(got, dz @ a.T / M, rtol=tol, atol=tol)
    got = assert_on_backend(db, backend, shape=(N, 1), dtype_name=dtype_name)
    np.testing.assert_allclose(got, dz.sum(axis=1, keepdims=True) / M, rtol=tol, atol=tol)


def test_dW_and_db_carry_one_over_m(backend, rng):
    """Repeating every example three times leaves dW and db unchanged; dA_prev repeats."""
    a, w, b, dz = _inputs(rng, "float64")
    once = dn.linear_backward(*_backward_args(backend, a, w, b, dz))
    thrice = dn.linear_backward(*_backward_args(backend, np.tile(a, 3), w, b, np.tile(dz, 3)))
    np.testing.assert_allclose(dn.to_numpy(thrice[1]), dn.to_numpy(once[1]), rtol=1e-12)
    np.testing.assert_allclose(dn.to_numpy(thrice[2]), dn.to_numpy(once[2]), rtol=1e-12)
    np.testing.assert_allclose(dn.to_numpy(thrice[0]), np.tile(dn.to_numpy(once[0]), 3),
                               rtol=1e-12)
    # and one column alone: dW is exactly the outer product (m = 1)
    single = dn.linear_backward(*_backward_args(backend, a[:, :1], w, b, dz[:, :1]))
    np.testing.assert_allclose(dn.to_numpy(single[1]), dz[:, :1] @ a[:, :1].T, rtol=1e-12)


def _backward_args(backend, a, w, b, dz):
    A_prev, W, bb, dZ = _move(backend, "float64", a, w, b, dz)
    return dZ, dn.linear_forward(A_prev, W, bb)[1]


@pytest.mark.parametrize("name", list(activations.ACTIVATIONS))
def test_dense_forward(backend, dtype_name, rng, name):
    a, w, b, _ = _inputs(rng, dtype_name)
    A_prev, W, bb = _move(backend, dtype_name, a, w, b)
    A, cache = dn.dense_forward(A_prev, W, bb, name)
    tol = tolerance(dtype_name)
    z_ref = w @ a + b
    got = assert_on_backend(A, backend, shape=(N, M), dtype_name=dtype_name)
    np.testing.assert_allclose(got, forward_ref(name, z_ref), rtol=tol, atol=tol)
    linear_cache, Z, A_cached = cache
    assert A_cached is A
    assert linear_cache[0] is A_prev and linear_cache[1] is W
    np.testing.assert_allclose(
        assert_on_backend(Z, backend, shape=(N, M), dtype_name=dtype_name), z_ref,
        rtol=tol, atol=tol,
    )


@pytest.mark.parametrize("name", list(activations.ACTIVATIONS))
def test_dense_backward(backend, dtype_name, rng, name):
    a, w, b, da = _inputs(rng, dtype_name)
    A_prev, W, bb, dA = _move(backend, dtype_name, a, w, b, da)
    _, cache = dn.dense_forward(A_prev, W, bb, name)
    dA_prev, dW, db = dn.dense_backward(dA, cache, name)
    # the reference: dZ from the notes' rule on Z computed on the host
    z = dn.to_numpy(cache[1]).astype(np.float64)
    dz = backward_ref(name, da, z)
    tol = tolerance(dtype_name)
    got = assert_on_backend(dA_prev, backend, shape=(N_PREV, M), dtype_name=dtype_name)
    np.testing.assert_allclose(got, w.T @ dz, rtol=tol, atol=tol)
    got = assert_on_backend(dW, backend, shape=(N, N_PREV), dtype_name=dtype_name)
    np.testing.assert_allclose(got, dz @ a.T / M, rtol=tol, atol=tol)
    got = assert_on_backend(db, backend, shape=(N, 1), dtype_name=dtype_name)
    np.testing.assert_allclose(got, dz.sum(axis=1, keepdims=True) / M, rtol=tol, atol=tol)


def test_dense_kernels_refuse_unknown_activations(backend, rng):
    a, w, b, _ = _inputs(rng, "float64")
    A_prev, W, bb = _move(backend, "float64", a, w, b)
    with pytest.raises(dn.InputError, match="unknown activation 'gelu'"):
        dn.dense_forward(A_prev, W, bb, "gelu")
    _, cache = dn.dense_forward(A_prev, W, bb, "relu")
    with pytest.raises(dn.InputError, match="unknown activation 'gelu'"):
        dn.dense_backward(A_prev, cache, "gelu")


def test_a_two_layer_loop_by_hand_matches_the_network(backend, rng):
    """Research code stacking the public kernels gets the network's own gradients."""
    net = dn.DeepNet([4, 3, 2], hidden="tanh", output="sigmoid", dtype="float64", seed=4,
                     backend=backend)
    X = rng.standard_normal((4, 5))
    Y = (rng.random((2, 5)) < 0.5).astype(np.float64)
    p = net.params
    A1, c1 = dn.dense_forward(backend.asarray(X, net.dtype), p["W1"], p["b1"], "tanh")
    A2, c2 = dn.dense_forward(A1, p["W2"], p["b2"], "sigmoid")
    dZ2 = A2 - backend.asarray(Y, net.dtype)
    dA1, dW2, db2 = dn.linear_backward(dZ2, c2[0])
    _, dW1, db1 = dn.dense_backward(dA1, c1, "tanh")
    AL, caches = net.forward(X)
    grads = net.backward(AL, Y, caches)
    for key, mine in {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}.items():
        np.testing.assert_allclose(dn.to_numpy(mine), dn.to_numpy(grads[key]), rtol=1e-13)
