"""losses: the costs of DESIGN.md against NumPy float64 references; stability; labels."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_on_backend, tolerance

import deepnet as dn
from deepnet import losses

# -- references, straight from DESIGN.md's formulas (float64) -------------------------------


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softmax(z):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def bce_ref(a, y):
    m = a.shape[1]
    return -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)) / m


def ce_ref(a, y):
    m = a.shape[1]
    return -np.sum(y * np.log(a)) / m


def mse_ref(a, y):
    m = a.shape[1]
    return np.sum((a - y) ** 2) / (2 * m)


def _one_hot_ref(labels, n):
    return np.eye(n)[:, labels]


def _scalar(x, backend, dtype_name) -> float:
    """A 0-d cost array on ``backend`` of ``dtype_name``, as a Python float."""
    host = assert_on_backend(x, backend, shape=(), dtype_name=dtype_name)
    return float(host)


def _move(backend, dtype_name, *hosts):
    dt = backend.dtype(dtype_name)
    return [backend.asarray(h.astype(dtype_name), dt) for h in hosts]


# -- the costs ------------------------------------------------------------------------------


@pytest.mark.parametrize("nL", [1, 3])
def test_bce_matches_the_formula(backend, dtype_name, rng, nL):
    z = rng.standard_normal((nL, 9)) * 2
    y = (rng.random((nL, 9)) < 0.5).astype(np.float64)
    z = z.astype(dtype_name).astype(np.float64)
    Z, A, Y = _move(backend, dtype_name, z, _sigmoid(z), y)
    ref = bce_ref(_sigmoid(z), y)
    tol = tolerance(dtype_name)
    assert _scalar(losses.bce_from_logits(Z, Y), backend, dtype_name) == pytest.approx(ref, rel=tol)
    assert _scalar(losses.bce_from_output(A, Y), backend, dtype_name) == pytest.approx(ref, rel=tol)


def test_bce_accepts_soft_labels(backend, rng):
    z = rng.standard_normal((2, 6))
    y = rng.random((2, 6))
    Z, Y = _move(backend, "float64", z, y)
    got = _scalar(losses.bce_from_logits(Z, Y), backend, "float64")
    assert got == pytest.approx(bce_ref(_sigmoid(z), y), rel=1e-12)


def test_ce_matches_the_formula(backend, dtype_name, rng):
    z = rng.standard_normal((4, 10)) * 2
    z = z.astype(dtype_name).astype(np.float64)
    y = _one_hot_ref(rng.integers(0, 4, size=10), 4)
    Z, A, Y = _move(backend, dtype_name, z, _softmax(z), y)
    ref = ce_ref(_softmax(z), y)
    tol = tolerance(dtype_name)
    assert _scalar(losses.ce_from_logits(Z, Y), backend, dtype_name) == pytest.approx(ref, rel=tol)
    assert _scalar(losses.ce_from_output(A, Y), backend, dtype_name) == pytest.approx(ref, rel=tol)


@pytest.mark.parametrize("nL", [1, 3])
def test_mse_matches_the_formula(backend, dtype_name, rng, nL):
    a = rng.standard_normal((nL, 8)).astype(dtype_name).astype(np.float64)
    y = rng.standard_normal((nL, 8)).astype(dtype_name).astype(np.float64)
    A, Y = _move(backend, dtype_name, a, y)
    ref = mse_ref(a, y)
    tol = tolerance(dtype_name)
    assert _scalar(losses.mse(A, Y), backend, dtype_name) == pytest.approx(ref, rel=tol)
    linear = losses.for_output("linear")
    assert _scalar(linear.from_logits(A, Y), backend, dtype_name) == pytest.approx(ref, rel=tol)
    assert _scalar(linear.from_output(A, Y), backend, dtype_name) == pytest.approx(ref, rel=tol)


def test_costs_average_over_examples_and_sum_over_units(backend):
    """Duplicating every example leaves each cost unchanged; doubling units doubles it."""
    rng = np.random.default_rng(5)
    z = rng.standard_normal((3, 4))
    y = _one_hot_ref(rng.integers(0, 3, size=4), 3)
    for fn in (losses.bce_from_logits, losses.ce_from_logits, losses.mse):
        once = float(dn.to_numpy(fn(*_move(backend, "float64", z, y))))
        twice_m = float(dn.to_numpy(fn(*_move(backend, "float64", np.hstack([z, z]),
                                                np.hstack([y, y])))))
        assert twice_m == pytest.approx(once, rel=1e-12)
    for fn in (losses.bce_from_logits, losses.mse):
        once = float(dn.to_numpy(fn(*_move(backend, "float64", z, y))))
        twice_n = float(dn.to_numpy(fn(*_move(backend, "float64", np.vstack([z, z]),
                                                np.vstack([y, y])))))
        assert twice_n == pytest.approx(2 * once, rel=1e-12)


def test_output_dZ_is_A_minus_Y(backend, dtype_name, rng):
    a, y = rng.random((3, 5)), rng.random((3, 5))
    A, Y = _move(backend, dtype_name, a, y)
    got = assert_on_backend(losses.output_dZ(A, Y), backend, shape=(3, 5), dtype_name=dtype_name)
    np.testing.assert_allclose(got, a.astype(dtype_name) - y.astype(dtype_name), rtol=1e-6)


# -- stability ------------------------------------------------------------------------------


def test_bce_from_logits_is_finite_at_extreme_logits(backend, dtype_name):
    z = np.array([[1e4, -1e4, 1e4, -1e4, 0.0, 80.0, -80.0]])
    y = np.array([[1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0]])
    Z, Y = _move(backend, dtype_name, z, y)
    got = _scalar(losses.bce_from_logits(Z, Y), backend, dtype_name)
    ref = np.sum(np.logaddexp(0.0, z) - z * y) / z.shape[1]  # softplus(z) - z y
    assert np.isfinite(got)
    assert got == pytest.approx(ref, rel=tolerance(dtype_name))
    assert ref == pytest.approx((2e4 + 160.0 + np.log(2.0)) / 7, rel=1e-12)


def test_ce_from_logits_is_finite_at_extreme_logits(backend, dtype_name):
    z = np.array(
        [
            [1e4, -1e4, 1e4, 0.0],
            [-1e4, 1e4, 1e4, 0.0],
            [0.0, 0.0, -1e4, 1e4],
        ]
    )
    y = _one_hot_ref(np.array([0, 0, 2, 1]), 3)
    Z, Y = _move(backend, dtype_name, z, y)
    got = _scalar(losses.ce_from_logits(Z, Y), backend, dtype_name)
    ref = np.sum(np.logaddexp.reduce(z, axis=0) - np.sum(y * z, axis=0)) / z.shape[1]
    assert np.isfinite(got)
    assert got == pytest.approx(ref, rel=tolerance(dtype_name))
    assert ref == pytest.approx((0.0 + 2e4 + (2e4 + np.log(2.0)) + 1e4) / 4, rel=1e-12)


def test_from_output_never_takes_log_of_zero(backend, dtype_name):
    """Saturated outputs (exact 0 and 1) give a large finite cost, never inf or nan.

    ``pytest -W error`` would also turn NumPy's divide-by-zero warning into a failure.
    """
    tiny = float(np.finfo(dtype_name).tiny)
    a = np.array([[0.0, 1.0, 0.0, 1.0]])
    y = np.array([[0.0, 1.0, 1.0, 0.0]])
    A, Y = _move(backend, dtype_name, a, y)
    got = _scalar(losses.bce_from_output(A, Y), backend, dtype_name)
    assert np.isfinite(got)
    assert got == pytest.approx(-2 * np.log(tiny) / 4, rel=tolerance(dtype_name))
    perfect = _scalar(losses.bce_from_output(*_move(backend, dtype_name, a, a)), backend,
                      dtype_name)
    assert perfect == 0.0

    a = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    y = _one_hot_ref(np.array([0, 2]), 3)
    got = _scalar(losses.ce_from_output(*_move(backend, dtype_name, a, y)), backend, dtype_name)
    assert np.isfinite(got)
    assert got == pytest.approx(-np.log(tiny) / 2, rel=tolerance(dtype_name))


# -- labels -------------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [1, 2, 5])
def test_one_hot(backend, dtype_name, rng, n_classes):
    labels = rng.integers(0, n_classes, size=11)
    got = losses.one_hot(backend.asarray(labels), n_classes, backend.dtype(dtype_name))
    host = assert_on_backend(got, backend, shape=(n_classes, 11), dtype_name=dtype_name)
    np.testing.assert_array_equal(host, _one_hot_ref(labels, n_classes))


def _softmax_net(backend, nL=4):
    return dn.DeepNet([3, 5, nL], hidden="tanh", output="softmax", dtype="float64", seed=2,
                      backend=backend)


def test_integer_labels_equal_one_hot_for_softmax(backend, rng):
    net = _softmax_net(backend)
    X = rng.standard_normal((3, 12))
    labels = rng.integers(0, 4, size=12)
    AL, caches = net.forward(X)
    one_hot = _one_hot_ref(labels, 4)
    # not bit-equal: torch's reductions follow the memory layout, and the one-hot built on
    # the device is laid out differently from the host one moved in; 1e-14 is a few ulps
    for with_caches in (caches, None):
        assert net.cost(AL, labels, with_caches) == pytest.approx(
            net.cost(AL, one_hot, with_caches), rel=1e-14
        )
    by_int = net.backward(AL, labels, caches)
    by_hot = net.backward(AL, one_hot, caches)
    assert list(by_int) == list(by_hot)
    for key in by_int:
        np.testing.assert_allclose(
            dn.to_numpy(by_int[key]), dn.to_numpy(by_hot[key]), rtol=1e-14, atol=1e-16
        )
    # whole-number floats and labels already on the backend are class labels too
    expected = net.cost(AL, labels)
    assert net.cost(AL, labels.astype(np.float64)) == expected
    assert net.cost(AL, backend.asarray(labels)) == expected
    assert net.cost(AL, one_hot) == pytest.approx(expected, rel=1e-14)
    # the cost is the reference CE on the reference softmax of Z[L]
    ZL = dn.to_numpy(caches[-1][0][1])
    assert net.cost(AL, labels, caches) == pytest.approx(ce_ref(_softmax(ZL), one_hot), rel=1e-12)


def test_sigmoid_labels_of_shape_m_when_nL_is_1(backend, rng):
    net = dn.DeepNet([3, 4, 1], dtype="float64", seed=1, backend=backend)
    X = rng.standard_normal((3, 7))
    y = (rng.random(7) < 0.5).astype(np.float64)
    AL, caches = net.forward(X)
    assert net.cost(AL, y, caches) == net.cost(AL, y.reshape(1, 7), caches)
    a = dn.to_numpy(AL)
    assert net.cost(AL, y) == pytest.approx(bce_ref(a, y.reshape(1, 7)), rel=1e-12)


def test_for_output():
    assert losses.for_output("sigmoid").name == "binary_cross_entropy"
    assert losses.for_output("softmax").name == "categorical_cross_entropy"
    assert losses.for_output("linear").name == "mean_squared_error"
    with pytest.raises(dn.InputError) as info:
        losses.for_output("relu")
    assert "relu" in str(info.value) and "sigmoid, softmax, linear" in str(info.value)
