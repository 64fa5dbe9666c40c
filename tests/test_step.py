"""The training step on both of its paths: the workspace (out=) and the portable one.

The workspace path runs where the backend can write into buffers (NumPy, CuPy, torch);
array-api-strict always takes the portable path. Both must give the same parameters.
"""

from __future__ import annotations

import numpy as np
import pytest

import deepnet as dn
from deepnet import backend as B
from deepnet import optimizers
from deepnet.step import train_step

HIDDEN = ["relu", "leaky_relu", "tanh", "sigmoid", "linear"]


def _data(n0: int, nL: int, m: int, output: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n0, m))
    if output == "softmax":
        Y = rng.integers(0, nL, size=m)
    elif output == "sigmoid":
        Y = (rng.random((nL, m)) > 0.5).astype(float)
    else:
        Y = rng.standard_normal((nL, m))
    return X, Y


def _train(backend, reuse, hidden, output, opt_name, dtype_name, l2=0.0, keep_prob=1.0,
           steps=4, m=9):
    net = dn.DeepNet([3, 6, 5, 2], hidden=hidden, output=output, backend=backend,
                     dtype=dtype_name, l2=l2, keep_prob=keep_prob, seed=3,
                     reuse_buffers=reuse)
    X, Y = _data(3, 2, m, output)
    Xd, Yd = net._check_X(X), net._check_Y(Y, m)
    opt = optimizers.get(opt_name, 0.05)
    costs = [float(train_step(net, Xd, Yd, opt)) for _ in range(steps)]
    return net, costs


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output", ["sigmoid", "softmax", "linear"])
def test_workspace_and_portable_paths_agree(backend, hidden, output):
    a, costs_a = _train(backend, True, hidden, output, "adam", "float64", l2=0.1)
    b, costs_b = _train(backend, False, hidden, output, "adam", "float64", l2=0.1)
    np.testing.assert_allclose(costs_a, costs_b, rtol=1e-13)
    for key in a.params:
        np.testing.assert_allclose(
            dn.to_numpy(a.params[key]), dn.to_numpy(b.params[key]), rtol=1e-12, atol=1e-14
        )


@pytest.mark.parametrize("opt_name", ["gd", "momentum", "rmsprop", "adam"])
def test_every_optimizer_agrees_on_both_paths(backend, opt_name, dtype_name):
    a, _ = _train(backend, True, "relu", "sigmoid", opt_name, dtype_name, keep_prob=0.8)
    b, _ = _train(backend, False, "relu", "sigmoid", opt_name, dtype_name, keep_prob=0.8)
    rtol = 1e-12 if dtype_name == "float64" else 1e-5
    for key in a.params:
        np.testing.assert_allclose(
            dn.to_numpy(a.params[key]), dn.to_numpy(b.params[key]), rtol=rtol, atol=rtol
        )


def test_workspace_only_where_the_backend_writes_into_buffers(backend):
    net = dn.DeepNet([3, 4, 1], backend=backend)
    ws = net._workspace(7)
    if backend.supports_out:
        assert ws is not None and ws is net._workspace(7)
        assert tuple(ws.A[1].shape) == (4, 7) and tuple(ws.dW[2].shape) == (1, 4)
    else:
        assert ws is None
    net.reuse_buffers = False
    assert net._workspace(7) is None


def test_workspace_keeps_two_batch_sizes(backend):
    if not backend.supports_out:
        pytest.skip(f"{backend.name} has no out=: no workspace to keep")
    net = dn.DeepNet([3, 4, 1], backend=backend)
    first, second = net._workspace(32), net._workspace(5)
    assert net._workspace(32) is first and net._workspace(5) is second
    net._workspace(7)
    assert len(net._workspaces) == 2


def test_the_step_writes_into_the_workspace(backend):
    """On out= backends the step's Z/A and gradients live in the workspace buffers."""
    if not backend.supports_out:
        pytest.skip(f"{backend.name} has no out=: the portable path allocates")
    net = dn.DeepNet([3, 4, 4, 1], backend=backend, dtype="float64")
    X, Y = _data(3, 1, 6, "sigmoid")
    Xd, Yd = net._check_X(X), net._check_Y(Y, 6)
    ws = net._workspace(6)
    AL, caches = net._forward(Xd, training=True, ws=ws)
    assert caches[0][0][2] is ws.A[1] and caches[1][0][2] is ws.A[2]
    grads = net._backward(AL, Yd, caches, ws=ws)
    assert grads["dW1"] is ws.dW[1] and grads["db3"] is ws.db[3]
    reference = dn.DeepNet([3, 4, 4, 1], backend=backend, dtype="float64", reuse_buffers=False)
    AL2, caches2 = reference._forward(Xd, training=True)
    expected = reference._backward(AL2, Yd, caches2)
    for key, value in expected.items():
        np.testing.assert_allclose(dn.to_numpy(grads[key]), dn.to_numpy(value), rtol=1e-13)


def test_public_forward_results_outlive_the_next_call(backend):
    """forward/backward never hand out workspace buffers: a second call changes nothing."""
    net = dn.DeepNet([3, 4, 1], backend=backend, dtype="float64")
    X1, _ = _data(3, 1, 5, "sigmoid", seed=1)
    X2, _ = _data(3, 1, 5, "sigmoid", seed=2)
    AL1, _ = net.forward(X1)
    kept = dn.to_numpy(AL1).copy()
    net.forward(X2)
    np.testing.assert_array_equal(dn.to_numpy(AL1), kept)


def test_into_writes_or_allocates(backend):
    xp = backend.xp
    a = xp.asarray(np.arange(6.0).reshape(2, 3), device=backend.device)
    out = xp.zeros((2, 3), dtype=a.dtype, device=backend.device)
    result = B.into(out, "multiply", a, 2.0)
    np.testing.assert_array_equal(dn.to_numpy(result), np.arange(6.0).reshape(2, 3) * 2)
    assert (result is out) == B.out_supported(out) == backend.supports_out
    fresh = B.into(None, "multiply", a, 2.0)
    assert fresh is not out


def test_parameters_are_views_of_one_flat_array_where_out_is_supported(backend):
    net = dn.DeepNet([3, 4, 2], backend=backend, dtype="float64")
    if not backend.supports_out:
        assert net._flat is None and net._update_targets() is net._params
        return
    flat = net._flat
    assert tuple(flat.shape) == (3 * 4 + 4 + 4 * 2 + 2,)
    rng = np.random.default_rng(0)
    new = {k: rng.standard_normal(v) for k, v in net.param_shapes().items()}
    net.set_params(new)
    expected = np.concatenate([new[k].ravel() for k in net.param_shapes()])
    np.testing.assert_array_equal(dn.to_numpy(net._flat), expected)
    net.params["W1"][0, 0] = 123.0  # a write through the dict's view lands in the flat array
    assert float(net._flat[0]) == 123.0
    assert set(net._update_targets()) == {"params"}
