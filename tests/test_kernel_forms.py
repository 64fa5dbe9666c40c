"""Kernels with two standard formulations, chosen per library by a ``backend`` hook:
each formulation is run on every backend and held to the same reference."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_on_backend, tolerance

import deepnet as dn
from deepnet import activations, losses
from deepnet import backend as B
from deepnet import hooks as H

EXTREME = np.array([-1e4, -800.0, -100.0, -30.0, -1.0, 0.0, 1e-3, 1.0, 30.0, 100.0, 800.0, 1e4])


def _bce_ref(z: np.ndarray, y: np.ndarray) -> float:
    """``(1/m) Σ softplus(z) - z y`` in float64 with ``np.logaddexp`` (stable)."""
    return float(np.sum(np.logaddexp(0.0, z) - z * y) / z.shape[1])


@pytest.mark.parametrize("fewer", [True, False])
def test_both_bce_forms_match_the_reference(backend, dtype_name, rng, fewer, monkeypatch):
    monkeypatch.setattr(losses, "prefers_fewer_kernels", lambda x: fewer)
    z = np.concatenate([EXTREME, rng.standard_normal(20) * 4]).reshape(2, -1)
    z = z.astype(dtype_name).astype(np.float64)
    y = np.concatenate([rng.random(z.size - 3), [0.0, 1.0, 0.5]]).reshape(z.shape)
    dt = backend.dtype(dtype_name)
    J = losses.bce_from_logits(backend.asarray(z, dt), backend.asarray(y, dt))
    got = assert_on_backend(J, backend, (), dtype_name)
    assert np.isfinite(got)
    assert float(got) == pytest.approx(_bce_ref(z, y), rel=tolerance(dtype_name))


def test_fewer_kernels_where_launches_cost():
    assert H.prefers_fewer_kernels(np.zeros(2)) is False
    torch = pytest.importorskip("torch")
    assert H.prefers_fewer_kernels(torch.zeros(2)) is True


def test_relu_reads_full_zeros_only_where_numpy_gains(backend):
    shape_small, shape_big = (64, 64), (1024, 1024)
    for shape in (shape_small, shape_big):
        for dtype_name in ("float32", "float64"):
            dt = backend.dtype(dtype_name)
            Z = backend.asarray(np.zeros(shape), dt)
            zeros = backend.xp.zeros(shape, dtype=dt, device=backend.device)
            floor = H.relu_floor(Z, zeros)
            full = backend.name == "numpy" and dtype_name == "float32" and shape == shape_small
            assert (floor is zeros) == full
            if not full:
                assert tuple(floor.shape) == ()
                assert float(dn.to_numpy(floor)) == 0.0
            assert H.relu_floor(Z, None) is H.constant(0.0, Z)


@pytest.mark.parametrize("full", [True, False])
def test_relu_against_either_zeros(backend, rng, full):
    z = rng.standard_normal((5, 7))
    dt = backend.dtype("float64")
    Z = backend.asarray(z, dt)
    zeros = backend.xp.zeros((5, 7), dtype=dt, device=backend.device)
    other = zeros if full else H.constant(0.0, Z)
    out = backend.xp.empty((5, 7), dtype=dt, device=backend.device)
    got = B.into(out if backend.supports_out else None, "maximum", Z, other)
    np.testing.assert_array_equal(dn.to_numpy(got), np.maximum(z, 0.0))
    np.testing.assert_array_equal(dn.to_numpy(activations.relu(Z)), np.maximum(z, 0.0))


def test_constants_are_made_once_per_device_and_dtype(backend):
    a = backend.asarray(np.ones(3), backend.dtype("float32"))
    b = backend.asarray(np.ones(3), backend.dtype("float64"))
    c32 = H.constant(2.5, a)
    assert H.constant(2.5, a) is c32
    assert H.constant(2.5, b) is not c32
    assert_on_backend(c32, backend, (), "float32")
    assert float(dn.to_numpy(H.constant(2.5, b))) == 2.5


@pytest.mark.parametrize("portable", [False, True])
def test_squared_norm_is_the_sum_of_squares(backend, rng, portable, monkeypatch):
    if portable:  # the standard's vecdot, as on array-api-strict
        monkeypatch.setattr(H, "_OUT_LIBRARY", {})
    w = rng.standard_normal((13, 9))
    got = H.squared_norm(backend.asarray(w, backend.dtype("float64")))
    assert float(dn.to_numpy(got)) == pytest.approx(float(np.sum(w**2)), rel=1e-13)


def test_sigmoid_is_accurate_in_relative_terms(backend, dtype_name):
    """Four kernels, a few ulps: against float64 on the very same (rounded) inputs."""
    z = np.linspace(-80.0, 80.0, 4001).astype(dtype_name)
    dt = backend.dtype(dtype_name)
    got = assert_on_backend(activations.sigmoid(backend.asarray(z, dt)), backend, z.shape,
                            dtype_name).astype(np.float64)
    ref = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
    normal = ref > np.finfo(dtype_name).tiny
    rel = np.abs(got - ref)[normal] / ref[normal]
    assert rel.max() < 8 * np.finfo(dtype_name).eps
