"""initializers: the scale rules, b = 0, and one seed giving one network everywhere."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_on_backend

import deepnet as dn
from deepnet import initializers

DIMS = [7, 5, 3, 2]
SCALES = {
    "he": lambda n_in, n_out: math.sqrt(2.0 / n_in),
    "xavier": lambda n_in, n_out: math.sqrt(2.0 / (n_in + n_out)),
    "scaled": lambda n_in, n_out: 1.0 / math.sqrt(n_in),
}


def _host_params(net) -> dict[str, np.ndarray]:
    return {k: dn.to_numpy(v) for k, v in net.params.items()}


@pytest.mark.parametrize("name", list(SCALES))
def test_scale_formulas(name):
    rule = initializers.get(name)
    for n_in, n_out in [(1, 1), (2, 8), (784, 10), (3, 300)]:
        assert rule(n_in, n_out) == SCALES[name](n_in, n_out)


def test_the_table_has_exactly_the_three_rules():
    assert set(initializers.INITIALIZERS) == set(SCALES)


@pytest.mark.parametrize("bad", ["glorot", "HE", "", None, 3])
def test_unknown_init(bad):
    with pytest.raises(dn.InputError) as info:
        initializers.get(bad)
    assert "unknown init" in str(info.value) and "he, xavier, scaled" in str(info.value)
    with pytest.raises(dn.InputError, match="unknown init"):
        dn.DeepNet([3, 1], init=bad, backend="numpy")


@pytest.mark.parametrize("name", list(SCALES))
def test_weights_are_the_host_rng_draws_times_the_scale(backend, dtype_name, name):
    """Exactly ``rng.standard_normal((n[l], n[l-1])) * scale`` in layer order, then cast."""
    seed = 42
    net = dn.DeepNet(DIMS, init=name, dtype=dtype_name, seed=seed, backend=backend)
    rng = np.random.default_rng(seed)
    for l in range(1, len(DIMS)):
        n_in, n_out = DIMS[l - 1], DIMS[l]
        expected = (rng.standard_normal((n_out, n_in)) * SCALES[name](n_in, n_out))
        W = assert_on_backend(net.params[f"W{l}"], backend, shape=(n_out, n_in),
                              dtype_name=dtype_name)
        np.testing.assert_array_equal(W, expected.astype(dtype_name))
        b = assert_on_backend(net.params[f"b{l}"], backend, shape=(n_out, 1),
                              dtype_name=dtype_name)
        np.testing.assert_array_equal(b, np.zeros((n_out, 1)))


@pytest.mark.parametrize("name", list(SCALES))
def test_sample_std_is_roughly_the_scale(name):
    dims = [400, 300, 200]
    net = dn.DeepNet(dims, init=name, dtype="float64", seed=3, backend="numpy")
    for l in (1, 2):
        W = dn.to_numpy(net.params[f"W{l}"])
        target = SCALES[name](dims[l - 1], dims[l])
        assert W.std() == pytest.approx(target, rel=0.02)
        assert abs(W.mean()) < 0.02 * target


@pytest.mark.parametrize("name", list(SCALES))
def test_same_seed_bit_identical_on_every_backend(backend, dtype_name, name):
    reference = dn.DeepNet(DIMS, init=name, dtype=dtype_name, seed=7, backend="numpy")
    net = dn.DeepNet(DIMS, init=name, dtype=dtype_name, seed=7, backend=backend)
    ref, got = _host_params(reference), _host_params(net)
    assert list(got) == list(ref) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    for key in ref:
        assert got[key].dtype == ref[key].dtype == np.dtype(dtype_name)
        assert got[key].tobytes() == ref[key].tobytes(), key


def test_different_seeds_differ(backend):
    a = _host_params(dn.DeepNet(DIMS, seed=1, backend=backend))
    b = _host_params(dn.DeepNet(DIMS, seed=2, backend=backend))
    again = _host_params(dn.DeepNet(DIMS, seed=1, backend=backend))
    for l in range(1, len(DIMS)):
        assert not np.array_equal(a[f"W{l}"], b[f"W{l}"])
        np.testing.assert_array_equal(a[f"W{l}"], again[f"W{l}"])


def test_a_generator_as_seed(backend):
    net = dn.DeepNet(DIMS, dtype="float64", seed=np.random.default_rng(9), backend=backend)
    ref = dn.DeepNet(DIMS, dtype="float64", seed=9, backend="numpy")
    for key, value in _host_params(ref).items():
        np.testing.assert_array_equal(dn.to_numpy(net.params[key]), value)


def test_initialize_parameters_directly(backend):
    rng = np.random.default_rng(0)
    params = initializers.initialize_parameters(
        [3, 2], "scaled", rng, backend, backend.dtype("float64")
    )
    expected = np.random.default_rng(0).standard_normal((2, 3)) * (1.0 / math.sqrt(3))
    np.testing.assert_array_equal(
        assert_on_backend(params["W1"], backend, shape=(2, 3), dtype_name="float64"), expected
    )
    assert_on_backend(params["b1"], backend, shape=(2, 1), dtype_name="float64")
