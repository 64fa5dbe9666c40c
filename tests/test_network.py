"""network.DeepNet: shapes of the notes, values against a NumPy reference, dropout, L2,
parameters, moves between backends, and every kind of bad input."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from conftest import assert_on_backend, tolerance
from test_activations import backward_ref, forward_ref
from test_losses import bce_ref, ce_ref, mse_ref

import deepnet as dn

COST_REF = {"sigmoid": bce_ref, "softmax": ce_ref, "linear": mse_ref}


# -- a NumPy float64 reference network, written from the notes -----------------------------


def ref_forward(params, X, acts, masks=None):
    """``(Zs, As)`` with ``As[0] = X``; ``masks[l-1]`` multiplies ``A[l]`` when given."""
    Zs, As = [None], [X]
    for l, g in enumerate(acts, start=1):
        Z = params[f"W{l}"] @ As[-1] + params[f"b{l}"]
        A = forward_ref(g, Z)
        if masks is not None and masks[l - 1] is not None:
            A = A * masks[l - 1]
        Zs.append(Z)
        As.append(A)
    return Zs, As


def ref_backward(params, X, Y, acts, l2=0.0, masks=None):
    L, m = len(acts), X.shape[1]
    Zs, As = ref_forward(params, X, acts, masks)
    grads = {}
    dZ = As[L] - Y
    for l in range(L, 0, -1):
        grads[f"dW{l}"] = dZ @ As[l - 1].T / m + (l2 / m) * params[f"W{l}"]
        grads[f"db{l}"] = dZ.sum(axis=1, keepdims=True) / m
        if l > 1:
            dA = params[f"W{l}"].T @ dZ
            if masks is not None and masks[l - 2] is not None:
                dA = dA * masks[l - 2]
            dZ = backward_ref(acts[l - 2], dA, Zs[l - 1])
    return grads


def ref_cost(params, AL, Y, output, l2=0.0):
    m = AL.shape[1]
    squares = sum(np.sum(params[k] ** 2) for k in params if k.startswith("W"))
    return COST_REF[output](AL, Y) + l2 / (2 * m) * squares


def host_params(net):
    return {k: dn.to_numpy(v).astype(np.float64) for k, v in net.params.items()}


def labels_for(output, nL, m, rng):
    if output == "sigmoid":
        return (rng.random((nL, m)) < 0.5).astype(np.float64)
    if output == "softmax":
        return np.eye(nL)[:, rng.integers(0, nL, size=m)]
    return rng.standard_normal((nL, m))


OUTPUTS = ["sigmoid", "softmax", "linear"]
DIMS = [5, 4, 6, 3]
HIDDEN = ["tanh", "leaky_relu"]


def _net(backend, output="sigmoid", dims=DIMS, hidden=HIDDEN, dtype="float64", **kw):
    return dn.DeepNet(dims, hidden=hidden, output=output, dtype=dtype, seed=kw.pop("seed", 11),
                      backend=backend, **kw)


# -- shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize("output", OUTPUTS)
def test_every_array_has_the_notes_shape(backend, dtype_name, rng, output):
    dims, m = [5, 4, 6, 3], 7
    net = _net(backend, output, dims, dtype=dtype_name, keep_prob=0.8)
    assert net.L == 3
    X = rng.standard_normal((dims[0], m))
    Y = labels_for(output, dims[-1], m, rng)
    for l in range(1, net.L + 1):
        assert_on_backend(net.params[f"W{l}"], backend, (dims[l], dims[l - 1]), dtype_name)
        assert_on_backend(net.params[f"b{l}"], backend, (dims[l], 1), dtype_name)
    assert net.param_shapes() == {
        "W1": (4, 5), "b1": (4, 1), "W2": (6, 4), "b2": (6, 1), "W3": (3, 6), "b3": (3, 1),
    }
    for training in (False, True):
        AL, caches = net.forward(X, training=training)
        assert_on_backend(AL, backend, (dims[-1], m), dtype_name)
        assert isinstance(caches, list) and len(caches) == net.L
        for l, ((linear_cache, Z, A), D) in enumerate(caches, start=1):
            A_prev, W, b = linear_cache
            assert_on_backend(A_prev, backend, (dims[l - 1], m), dtype_name)
            assert_on_backend(W, backend, (dims[l], dims[l - 1]), dtype_name)
            assert_on_backend(b, backend, (dims[l], 1), dtype_name)
            assert_on_backend(Z, backend, (dims[l], m), dtype_name)
            assert_on_backend(A, backend, (dims[l], m), dtype_name)
            if training and l < net.L:
                assert_on_backend(D, backend, (dims[l], m), dtype_name)
            else:
                assert D is None
        grads = net.backward(AL, Y, caches)
        assert list(grads) == ["dW1", "db1", "dW2", "db2", "dW3", "db3"]
        for l in range(1, net.L + 1):
            assert_on_backend(grads[f"dW{l}"], backend, (dims[l], dims[l - 1]), dtype_name)
            assert_on_backend(grads[f"db{l}"], backend, (dims[l], 1), dtype_name)


def test_params_keys_and_liveness(backend):
    net = _net(backend)
    assert list(net.params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    params = net.params
    with pytest.raises(dn.InputError, match="cannot be deleted"):
        params.pop("W1")
    with pytest.raises(dn.InputError, match=r"no parameter 'W9'; its parameters are W1"):
        params["W9"] = np.zeros((2, 2))
    W1 = params["W1"]
    with pytest.raises(dn.ShapeError, match=r"W1 must have shape \(4, 5\); got \(5, 4\)"):
        params["W1"] = dn.to_numpy(W1).T
    with pytest.raises(dn.InputError, match="W1 must be finite"):
        params["W1"] = np.full(W1.shape, np.nan)
    assert params["W1"] is W1 and np.all(np.isfinite(dn.to_numpy(W1)))
    params["b2"] = np.full((6, 1), 0.25)  # any library's array, written in place
    assert_on_backend(net.params["b2"], backend, (6, 1), "float64")
    np.testing.assert_array_equal(dn.to_numpy(net.params["b2"]), 0.25)


def test_the_notes_update_loop_trains_the_network_through_params(backend, rng):
    """The course's ``update_parameters`` verbatim, against ``fit``'s full-batch GD."""
    X = rng.standard_normal((DIMS[0], 12))
    Y = (rng.random((DIMS[-1], 12)) < 0.5).astype(np.float64)
    net, ref = _net(backend), _net(backend)
    parameters, learning_rate, L = net.params, 0.3, net.L
    for _ in range(4):
        AL, caches = net.forward(X)
        grads = net.backward(AL, Y, caches)
        for l in range(L):
            parameters["W" + str(l + 1)] = (parameters["W" + str(l + 1)]
                                            - learning_rate * grads["dW" + str(l + 1)])
            parameters["b" + str(l + 1)] = (parameters["b" + str(l + 1)]
                                            - learning_rate * grads["db" + str(l + 1)])
    ref.fit(X, Y, epochs=4, batch_size=None, optimizer="gd", learning_rate=learning_rate,
            progress=False)
    for key, value in ref.params.items():
        np.testing.assert_allclose(dn.to_numpy(net.params[key]), dn.to_numpy(value),
                                   rtol=1e-12, atol=1e-14)
    assert net._flat is None or all(  # still views of the one flat array
        np.shares_memory(dn.to_numpy(net._flat), dn.to_numpy(v)) for v in net.params.values()
    ) or backend.name != "numpy"


def test_predictions_follow_the_caller_s_library(backend, rng):
    net = _net(backend, "softmax", dims=[5, 4, 3], hidden="tanh")
    X = rng.standard_normal((5, 30))
    for method in ("predict", "predict_proba"):
        got = getattr(net, method)(X)
        assert type(got) is np.ndarray, method  # NumPy in, NumPy out
        same = getattr(net, method)(backend.asarray(X, net.dtype))
        assert backend.owns(same)
        np.testing.assert_array_equal(dn.to_numpy(same), got)
        assert type(getattr(net, method)(X.tolist())) is np.ndarray
    torch = pytest.importorskip("torch")
    t = torch.asarray(X)
    assert isinstance(net.predict(t), torch.Tensor) and net.predict(t).dtype == torch.int64
    np.testing.assert_array_equal(net.predict(t).numpy(), net.predict(X))


def test_predict_and_evaluate_in_batches_equal_one_pass(backend, rng):
    net = _net(backend, "softmax", dims=[5, 4, 3], hidden="tanh")
    X = rng.standard_normal((5, 37))
    y = rng.integers(0, 3, 37)
    whole = net.predict_proba(X)
    np.testing.assert_allclose(net.predict_proba(X, batch_size=5), whole, rtol=1e-12)
    full = net.evaluate(X, y)
    parts = net.evaluate(X, y, batch_size=8)
    assert set(full) == {"cost", "accuracy"}
    AL, _ = net.forward(X)
    assert full["cost"] == pytest.approx(net.cost(AL, y), rel=1e-12)
    assert parts["cost"] == pytest.approx(full["cost"], rel=1e-12)
    assert full["accuracy"] == parts["accuracy"] == np.mean(net.predict(X) == y)
    with pytest.raises(dn.InputError, match="batch_size must be a positive integer"):
        net.predict(X, batch_size=0)


def test_summary_and_device(backend):
    net = _net(backend, "softmax", dims=[5, 4, 3], hidden="tanh")
    text = net.summary()
    assert "(4, 5)" in text and "tanh" in text and "softmax" in text
    assert f"{4 * 6 + 3 * 5:,} parameters" in text and backend.name in text
    assert net.device is backend.device


# -- values -------------------------------------------------------------------------------


@pytest.mark.parametrize("output", OUTPUTS)
def test_forward_and_backward_match_the_numpy_reference(backend, rng, output):
    net = _net(backend, output, l2=0.3)
    X = rng.standard_normal((DIMS[0], 9))
    Y = labels_for(output, DIMS[-1], 9, rng)
    p = host_params(net)
    Zs, As = ref_forward(p, X, net.activations)
    AL, caches = net.forward(X)
    np.testing.assert_allclose(dn.to_numpy(AL), As[-1], rtol=1e-12, atol=1e-14)
    for l, ((_, Z, A), _) in enumerate(caches, start=1):
        np.testing.assert_allclose(dn.to_numpy(Z), Zs[l], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dn.to_numpy(A), As[l], rtol=1e-12, atol=1e-14)
    grads = net.backward(AL, Y, caches)
    ref = ref_backward(p, X, Y, net.activations, l2=0.3)
    for key, value in ref.items():
        np.testing.assert_allclose(dn.to_numpy(grads[key]), value, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("output", OUTPUTS)
def test_forward_agrees_across_backends(backend, dtype_name, rng, output):
    rtol = {"float64": 1e-12, "float32": 1e-5}[dtype_name]
    reference = _net("numpy", output, dtype=dtype_name)
    net = _net(backend, output, dtype=dtype_name)
    X = rng.standard_normal((DIMS[0], 16))
    ref_AL, ref_caches = reference.forward(X)
    AL, caches = net.forward(X)
    pairs = [(ref_AL, AL)] + [
        (rc[0][k], c[0][k]) for rc, c in zip(ref_caches, caches) for k in (1, 2)
    ]
    for ref, got in pairs:
        ref, got = dn.to_numpy(ref), dn.to_numpy(got)
        assert got.dtype == ref.dtype == np.dtype(dtype_name)
        # relative to the array's scale: entries near zero carry the rounding of the others
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * np.abs(ref).max())


def test_forward_accepts_lists_and_other_libraries(backend, rng):
    net = _net(backend)
    X = rng.standard_normal((DIMS[0], 4))
    expected = dn.to_numpy(net.forward(X)[0])
    np.testing.assert_array_equal(dn.to_numpy(net.forward(X.tolist())[0]), expected)
    torch = pytest.importorskip("torch")
    other = torch.asarray(X) if backend.name != "torch" else dn.get_backend(
        "array_api_strict").asarray(X)
    np.testing.assert_allclose(dn.to_numpy(net.forward(other)[0]), expected, rtol=1e-15)


def test_float32_network_computes_in_float32(backend, rng):
    net = _net(backend, dtype="float32")
    AL, caches = net.forward(rng.standard_normal((DIMS[0], 3)))  # float64 input, cast in
    assert_on_backend(AL, backend, (DIMS[-1], 3), "float32")
    assert_on_backend(caches[0][0][0][0], backend, (DIMS[0], 3), "float32")


# -- predict -------------------------------------------------------------------------------


def test_predict_sigmoid_gives_0_1_labels(backend, rng):
    net = _net(backend, "sigmoid", dims=[5, 4, 2], hidden="tanh")
    X = backend.asarray(rng.standard_normal((5, 30)) * 3, net.dtype)
    AL = dn.to_numpy(net.predict_proba(X))
    pred = net.predict(X)
    assert backend.owns(pred) and tuple(pred.shape) == (2, 30)
    assert backend.xp.isdtype(pred.dtype, "integral")
    pred = dn.to_numpy(pred)
    np.testing.assert_array_equal(pred, (AL > 0.5).astype(np.int64))
    assert set(np.unique(pred)) <= {0, 1}


def test_predict_softmax_gives_class_indices(backend, rng):
    net = _net(backend, "softmax", dims=[5, 4, 3], hidden="tanh")
    X = backend.asarray(rng.standard_normal((5, 30)) * 3, net.dtype)
    AL = dn.to_numpy(net.predict_proba(X))
    pred = net.predict(X)
    assert backend.owns(pred) and tuple(pred.shape) == (30,)
    assert backend.xp.isdtype(pred.dtype, "integral")
    np.testing.assert_array_equal(dn.to_numpy(pred), AL.argmax(axis=0))
    np.testing.assert_allclose(AL.sum(axis=0), 1.0, rtol=1e-12)


def test_predict_linear_gives_AL(backend, rng):
    net = _net(backend, "linear", dims=[5, 4, 2], hidden="tanh")
    X = backend.asarray(rng.standard_normal((5, 6)), net.dtype)
    pred = assert_on_backend(net.predict(X), backend, (2, 6), "float64")
    np.testing.assert_array_equal(pred, dn.to_numpy(net.forward(X)[0]))
    np.testing.assert_array_equal(dn.to_numpy(net.predict_proba(X)), pred)


def test_predict_never_drops_out(backend, rng):
    net = _net(backend, keep_prob=0.5)
    full = _net(backend, keep_prob=1.0)
    X = rng.standard_normal((DIMS[0], 8))
    np.testing.assert_array_equal(dn.to_numpy(net.predict_proba(X)),
                                  dn.to_numpy(full.predict_proba(X)))


# -- cost and L2 ---------------------------------------------------------------------------


@pytest.mark.parametrize("output", OUTPUTS)
def test_cost_with_and_without_caches(backend, dtype_name, rng, output):
    net = _net(backend, output, dtype=dtype_name)
    X = rng.standard_normal((DIMS[0], 10))
    Y = labels_for(output, DIMS[-1], 10, rng)
    AL, caches = net.forward(X)
    ref = COST_REF[output](dn.to_numpy(AL).astype(np.float64), Y)
    with_caches, without = net.cost(AL, Y, caches), net.cost(AL, Y)
    assert type(with_caches) is float and type(without) is float
    tol = tolerance(dtype_name)
    assert with_caches == pytest.approx(ref, rel=tol)
    assert without == pytest.approx(ref, rel=tol)


def test_cost_from_caches_stays_finite_when_the_output_saturates(backend):
    """Huge logits: A[L] is exactly 0 or 1, but the cost from Z[L] is still exact."""
    net = dn.DeepNet([1, 1], output="sigmoid", dtype="float64", backend=backend)
    net.set_params({"W1": np.array([[1.0]]), "b1": np.array([[0.0]])})
    X = np.array([[800.0, -800.0]])
    Y = np.array([[0.0, 1.0]])
    AL, caches = net.forward(X)
    np.testing.assert_array_equal(dn.to_numpy(AL), [[1.0, 0.0]])
    assert net.cost(AL, Y, caches) == pytest.approx(800.0, rel=1e-12)
    assert np.isfinite(net.cost(AL, Y))


@pytest.mark.parametrize("output", OUTPUTS)
def test_l2_in_cost_and_gradient(backend, rng, output):
    lam, m = 0.7, 8
    plain = _net(backend, output, l2=0.0)
    reg = _net(backend, output, l2=lam)
    X = rng.standard_normal((DIMS[0], m))
    Y = labels_for(output, DIMS[-1], m, rng)
    p = host_params(reg)
    squares = sum(np.sum(p[f"W{l}"] ** 2) for l in range(1, reg.L + 1))
    AL, caches = reg.forward(X)
    AL_plain, caches_plain = plain.forward(X)  # same weights; caches belong to one network
    for c, c_plain in ((caches, caches_plain), (None, None)):
        assert reg.cost(AL, Y, c) - plain.cost(AL_plain, Y, c_plain) == pytest.approx(
            lam / (2 * m) * squares, rel=1e-10)
    assert reg.cost(AL, Y, caches) == pytest.approx(
        ref_cost(p, dn.to_numpy(AL), Y, output, lam), rel=1e-12)
    g_reg = reg.backward(AL, Y, caches)
    g_plain = plain.backward(AL_plain, Y, caches_plain)
    for l in range(1, reg.L + 1):
        np.testing.assert_allclose(
            dn.to_numpy(g_reg[f"dW{l}"]) - dn.to_numpy(g_plain[f"dW{l}"]),
            lam / m * p[f"W{l}"], rtol=1e-10, atol=1e-15)
        np.testing.assert_array_equal(dn.to_numpy(g_reg[f"db{l}"]),
                                      dn.to_numpy(g_plain[f"db{l}"]))


# -- dropout ----------------------------------------------------------------------------------


def _masks(caches):
    return [None if D is None else dn.to_numpy(D) for _, D in caches]


def test_dropout_only_in_the_training_forward(backend, rng):
    net = _net(backend, keep_prob=0.6)
    full = _net(backend, keep_prob=1.0)
    X = rng.standard_normal((DIMS[0], 12))
    AL, caches = net.forward(X)
    assert all(D is None for _, D in caches)
    np.testing.assert_array_equal(dn.to_numpy(AL), dn.to_numpy(full.forward(X)[0]))
    _, caches = full.forward(X, training=True)  # keep_prob 1: nothing to drop
    assert all(D is None for _, D in caches)
    AL_train, caches = net.forward(X, training=True)
    masks = _masks(caches)
    assert masks[-1] is None  # never on the output layer
    for D in masks[:-1]:
        assert set(np.unique(D)) <= {0.0, 1.0 / 0.6}
    # A[l] as passed on is g(Z[l]) * D[l]; the layer cache keeps g(Z[l]) itself
    for l in range(1, net.L):
        passed_on = dn.to_numpy(caches[l][0][0][0])
        np.testing.assert_allclose(passed_on, dn.to_numpy(caches[l - 1][0][2]) * masks[l - 1],
                                   rtol=1e-15)
    _, As = ref_forward(host_params(net), X, net.activations, masks)
    np.testing.assert_allclose(dn.to_numpy(AL_train), As[-1], rtol=1e-12, atol=1e-14)


def test_dropout_keeps_about_keep_prob(backend):
    net = dn.DeepNet([2, 400, 1], keep_prob=0.7, dtype="float32", seed=0, backend=backend)
    _, caches = net.forward(np.ones((2, 250)), training=True)
    kept = (dn.to_numpy(caches[0][1]) > 0).mean()
    assert kept == pytest.approx(0.7, abs=0.01)


def test_dropout_masks_reproducible_across_backends(backend, dtype_name, rng):
    X = rng.standard_normal((DIMS[0], 10))
    ref = _net("numpy", dtype=dtype_name, keep_prob=0.5, seed=21)
    net = _net(backend, dtype=dtype_name, keep_prob=0.5, seed=21)
    for _ in range(2):  # and the host RNG advances the same way on both
        ref_masks = _masks(ref.forward(X, training=True)[1])
        masks = _masks(net.forward(X, training=True)[1])
        for a, b in zip(ref_masks, masks):
            if a is None:
                assert b is None
            else:
                assert a.dtype == b.dtype == np.dtype(dtype_name)
                np.testing.assert_array_equal(a, b)
    first = _masks(_net(backend, keep_prob=0.5, seed=21).forward(X, training=True)[1])
    second = _masks(net.forward(X, training=True)[1])
    assert not np.array_equal(first[0], second[0])


@pytest.mark.parametrize("output", OUTPUTS)
def test_backward_respects_the_dropout_mask(backend, rng, output):
    net = _net(backend, output, keep_prob=0.5, l2=0.2)
    X = rng.standard_normal((DIMS[0], 9))
    Y = labels_for(output, DIMS[-1], 9, rng)
    AL, caches = net.forward(X, training=True)
    masks = _masks(caches)
    grads = net.backward(AL, Y, caches)
    ref = ref_backward(host_params(net), X, Y, net.activations, l2=0.2, masks=masks)
    for key, value in ref.items():
        np.testing.assert_allclose(dn.to_numpy(grads[key]), value, rtol=1e-11, atol=1e-14)


def test_a_dropped_unit_gets_no_gradient(backend, rng):
    """With one example, a unit dropped in layer l has zero dW[l] row and zero db[l]."""
    net = dn.DeepNet([3, 8, 8, 1], hidden="tanh", keep_prob=0.5, dtype="float64", seed=5,
                     backend=backend)
    X = rng.standard_normal((3, 1))
    AL, caches = net.forward(X, training=True)
    grads = net.backward(AL, np.array([[1.0]]), caches)
    for l in (1, 2):
        dropped = dn.to_numpy(caches[l - 1][1])[:, 0] == 0.0
        assert dropped.any() and not dropped.all()
        dW, db = dn.to_numpy(grads[f"dW{l}"]), dn.to_numpy(grads[f"db{l}"])
        np.testing.assert_array_equal(dW[dropped], 0.0)
        np.testing.assert_array_equal(db[dropped], 0.0)
        assert np.all(np.abs(db[~dropped]) > 0)


# -- set_params and to() -------------------------------------------------------------------


def _random_params(net, rng):
    return {k: rng.standard_normal(s) for k, s in net.param_shapes().items()}


def test_set_params_from_numpy(backend, dtype_name, rng):
    net = _net(backend, dtype=dtype_name)
    new = _random_params(net, rng)
    net.set_params(new)
    for key, value in new.items():
        got = assert_on_backend(net.params[key], backend, value.shape, dtype_name)
        np.testing.assert_array_equal(got, value.astype(dtype_name))
    new["W1"][0, 0] = 123.0  # the network holds its own copy
    assert dn.to_numpy(net.params["W1"])[0, 0] != 123.0


def test_set_params_from_another_library(backend, rng):
    torch = pytest.importorskip("torch")
    net = _net(backend)
    new = _random_params(net, rng)
    if backend.name == "torch":
        other = dn.get_backend("array_api_strict")
        foreign = {k: other.asarray(v) for k, v in new.items()}
    else:
        foreign = {k: torch.asarray(v) for k, v in new.items()}
    net.set_params(foreign)
    for key, value in new.items():
        got = assert_on_backend(net.params[key], backend, value.shape, "float64")
        np.testing.assert_array_equal(got, value)


def test_set_params_copies_arrays_of_its_own_backend(backend, rng):
    net = _net(backend)
    new = {k: backend.asarray(v, net.dtype) for k, v in _random_params(net, rng).items()}
    net.set_params(new)
    before = dn.to_numpy(net.params["W1"]).copy()
    new["W1"][0, 0] = 123.0
    np.testing.assert_array_equal(dn.to_numpy(net.params["W1"]), before)


def test_set_params_round_trip_from_another_network(backend, rng):
    source = _net("numpy", seed=99)
    net = _net(backend, seed=1)
    net.set_params(source.params)
    X = rng.standard_normal((DIMS[0], 5))
    np.testing.assert_allclose(dn.to_numpy(net.forward(X)[0]),
                               dn.to_numpy(source.forward(X)[0]), rtol=1e-12)


def test_to_moves_a_network(backend, rng):
    net = dn.DeepNet([4, 5, 3, 2], hidden=["relu", "tanh"], output="softmax", l2=0.1,
                     keep_prob=0.9, dtype="float64", seed=8, backend="numpy")
    net.set_params(_random_params(net, rng))
    moved = net.to(backend)
    assert moved is not net and moved.backend is backend
    assert moved.config() == net.config()
    for key, value in net.params.items():
        got = assert_on_backend(moved.params[key], backend, tuple(value.shape), "float64")
        np.testing.assert_array_equal(got, dn.to_numpy(value))
    X = rng.standard_normal((4, 6))
    np.testing.assert_allclose(dn.to_numpy(moved.forward(X)[0]), dn.to_numpy(net.forward(X)[0]),
                               rtol=1e-12)
    back = moved.to("numpy")
    assert back.backend.name == "numpy"
    for key, value in net.params.items():
        np.testing.assert_array_equal(dn.to_numpy(back.params[key]), dn.to_numpy(value))


def test_to_device1_by_name_and_device():
    net = _net("numpy")
    moved = net.to("array_api_strict", device="device1")
    assert moved.backend.label == "array_api_strict:device1"
    assert dn.backend.device_label(moved.params["W1"].device) == "device1"


# -- hidden as a list ----------------------------------------------------------------------


def test_hidden_as_a_list(backend, rng):
    hidden = ["relu", "sigmoid", "linear"]
    net = dn.DeepNet([3, 4, 4, 4, 2], hidden=hidden, output="linear", dtype="float64",
                     backend=backend)
    assert net.hidden == hidden
    assert net.activations == [*hidden, "linear"]
    X = rng.standard_normal((3, 5))
    Y = rng.standard_normal((2, 5))
    _, As = ref_forward(host_params(net), X, net.activations)
    AL, caches = net.forward(X)
    np.testing.assert_allclose(dn.to_numpy(AL), As[-1], rtol=1e-12, atol=1e-14)
    grads = net.backward(AL, Y, caches)
    for key, value in ref_backward(host_params(net), X, Y, net.activations).items():
        np.testing.assert_allclose(dn.to_numpy(grads[key]), value, rtol=1e-11, atol=1e-14)
    assert dn.DeepNet([3, 4, 2], hidden=("tanh",), backend=backend).hidden == ["tanh"]
    assert dn.DeepNet([3, 2], hidden=[], backend=backend).activations == ["sigmoid"]


# -- bad inputs ------------------------------------------------------------------------------


@contextlib.contextmanager
def _raises(kind, *words):
    """``kind`` (a deepnet error) raised, its message holding every one of ``words``."""
    with pytest.raises(kind) as info:
        yield info
    assert isinstance(info.value, dn.DeepNetError)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


@pytest.fixture
def small(backend):
    return dn.DeepNet([3, 4, 2], output="sigmoid", dtype="float64", seed=0, backend=backend)


def test_X_transposed_hints_X_T(small, rng):
    with _raises(dn.ShapeError, "(n0, m) = (3, m)", "(5, 3)", "X.T"):
        small.forward(rng.standard_normal((5, 3)))


def test_X_one_dimensional(small, rng):
    with _raises(dn.ShapeError, "2-D", "(3,)", "reshape(3, 1)"):
        small.forward(rng.standard_normal(3))
    with _raises(dn.ShapeError, "2-D", "(2, 3, 4)"):
        small.forward(rng.standard_normal((2, 3, 4)))


def test_X_with_the_wrong_n0(small, rng):
    with _raises(dn.ShapeError, "(n0, m) = (3, m)", "(4, 5)"):
        small.forward(rng.standard_normal((4, 5)))


def test_X_empty(small):
    with _raises(dn.ShapeError, "no examples", "(3, 0)"):
        small.forward(np.zeros((3, 0)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_X_not_finite(small, rng, bad):
    X = rng.standard_normal((3, 4))
    X[1, 2] = bad
    with _raises(dn.InputError, "X must be finite", "1 NaN or inf"):
        small.forward(X)
    with _raises(dn.InputError, "finite"):
        small.predict(X)


def test_X_complex_or_strings_or_not_an_array(small):
    with _raises(dn.InputError, "X", "real numbers", "complex"):
        small.forward(np.ones((3, 2)) + 1j)
    with _raises(dn.InputError, "X", "real numbers"):
        small.forward(np.array([["a", "b"], ["c", "d"], ["e", "f"]]))
    with _raises(dn.InputError, "X must be an array"):
        small.forward("not an array")
    with _raises(dn.InputError, "X must be an array"):
        small.forward(None)


def test_X_complex_on_its_own_backend(small):
    xp = small.xp
    Z = xp.asarray(np.ones((3, 2)) + 1j, device=small.backend.device)
    with _raises(dn.InputError, "complex"):
        small.forward(Z)


def test_Y_wrong_shape(small, rng):
    X = rng.standard_normal((3, 5))
    AL, caches = small.forward(X)
    with _raises(dn.ShapeError, "(nL, m) = (2, 5)", "(2, 4)"):
        small.backward(AL, np.zeros((2, 4)), caches)
    with _raises(dn.ShapeError, "(nL, m) = (2, 5)", "(5, 2)", "Y.T"):
        small.cost(AL, np.zeros((5, 2)), caches)
    with _raises(dn.ShapeError, "(nL, m) = (2, 5)"):
        small.cost(AL, np.zeros(5))  # (m,) only when nL == 1


def test_Y_outside_0_1_for_sigmoid(small, rng):
    AL, caches = small.forward(rng.standard_normal((3, 4)))
    Y = np.zeros((2, 4))
    Y[0, 1] = 2.0
    with _raises(dn.InputError, "sigmoid", "[0, 1]", "2.0"):
        small.cost(AL, Y, caches)
    Y[0, 1] = -0.5
    with _raises(dn.InputError, "[0, 1]", "-0.5"):
        small.backward(AL, Y, caches)
    Y[0, 1] = np.nan
    with _raises(dn.InputError, "Y must be finite"):
        small.backward(AL, Y, caches)


def test_Y_for_softmax_must_be_one_hot_or_labels(backend, rng):
    net = dn.DeepNet([3, 4, 3], output="softmax", dtype="float64", backend=backend)
    AL, caches = net.forward(rng.standard_normal((3, 4)))
    with _raises(dn.InputError, "softmax", "[0, 1]"):
        net.cost(AL, np.full((3, 4), 2.0), caches)
    not_hot = np.eye(3)[:, [0, 1, 2, 0]]
    not_hot[1, 0] = 1.0  # column 0 sums to 2
    with _raises(dn.InputError, "one-hot", "integer class labels"):
        net.cost(AL, not_hot, caches)


@pytest.mark.parametrize(
    "labels, words",
    [
        ([0, 1, 3, 2], ["0..2", "nL = 3", "from 0 to 3"]),
        ([0, -1, 2, 1], ["0..2", "from -1 to 2"]),
        ([0.0, 1.5, 2.0, 1.0], ["whole numbers", "0..2"]),
    ],
    ids=["too-high", "negative", "fraction"],
)
def test_integer_labels_out_of_range(backend, rng, labels, words):
    net = dn.DeepNet([3, 4, 3], output="softmax", dtype="float64", backend=backend)
    AL, caches = net.forward(rng.standard_normal((3, 4)))
    with _raises(dn.InputError, *words):
        net.backward(AL, np.array(labels), caches)


def test_integer_labels_of_the_wrong_count(backend, rng):
    net = dn.DeepNet([3, 4, 3], output="softmax", dtype="float64", backend=backend)
    AL, caches = net.forward(rng.standard_normal((3, 4)))
    with _raises(dn.ShapeError, "5 labels", "m = 4"):
        net.cost(AL, np.array([0, 1, 2, 0, 1]), caches)


def test_AL_and_caches_checked(small, rng):
    AL, caches = small.forward(rng.standard_normal((3, 4)))
    Y = np.zeros((2, 4))
    with _raises(dn.ShapeError, "AL", "(nL, m) = (2, m)", "(3, 4)"):
        small.cost(np.zeros((3, 4)), Y)
    with _raises(dn.InputError, "caches", "L = 2", "length 1"):
        small.backward(AL, Y, caches[:1])
    with _raises(dn.InputError, "caches", "dict"):
        small.backward(AL, Y, {})


def test_set_params_refuses_bad_dicts(small):
    good = {k: np.ones(s) for k, s in small.param_shapes().items()}
    before = host_params(small)
    with _raises(dn.InputError, "missing ['b2']"):
        small.set_params({k: v for k, v in good.items() if k != "b2"})
    with _raises(dn.InputError, "unexpected ['W3']"):
        small.set_params({**good, "W3": np.ones((2, 2))})
    with _raises(dn.ShapeError, "W2", "(2, 4)", "(4, 2)"):
        small.set_params({**good, "W2": np.ones((4, 2))})
    with _raises(dn.ShapeError, "b1", "(4, 1)", "(4,)"):
        small.set_params({**good, "b1": np.ones(4)})
    bad = {**good, "W1": np.ones((4, 3))}
    bad["W1"][2, 2] = np.nan
    with _raises(dn.InputError, "W1 must be finite"):
        small.set_params(bad)
    with _raises(dn.InputError, "dict"):
        small.set_params([np.ones((4, 3))])
    with _raises(dn.InputError, "real numbers"):
        small.set_params({**good, "W1": np.full((4, 3), "x")})
    # nothing was changed by any of the refused calls
    for key, value in before.items():
        np.testing.assert_array_equal(dn.to_numpy(small.params[key]), value)


@pytest.mark.parametrize(
    "kwargs, kind, words",
    [
        ({"hidden": "gelu"}, dn.InputError, ["unknown activation 'gelu'", "relu"]),
        ({"hidden": "softmax"}, dn.InputError, ["'softmax'", "cannot be used here"]),
        ({"output": "relu"}, dn.InputError, ["'relu'", "sigmoid, softmax, linear"]),
        ({"output": "softplus"}, dn.InputError, ["unknown activation 'softplus'"]),
        ({"hidden": ["relu"]}, dn.InputError, ["L - 1 = 2", "got 1"]),
        ({"hidden": 3}, dn.InputError, ["hidden must be an activation name or a list"]),
        ({"init": "glorot"}, dn.InputError, ["unknown init 'glorot'", "he, xavier, scaled"]),
        ({"l2": -0.1}, dn.InputError, ["l2 must be >= 0", "-0.1"]),
        ({"l2": float("nan")}, dn.InputError, ["l2 must be a finite real number"]),
        ({"l2": "0.1"}, dn.InputError, ["l2 must be a finite real number"]),
        ({"keep_prob": 0.0}, dn.InputError, ["keep_prob must be > 0", "0.0"]),
        ({"keep_prob": 1.5}, dn.InputError, ["keep_prob must be <= 1", "1.5"]),
        ({"keep_prob": -1}, dn.InputError, ["keep_prob must be > 0"]),
        ({"dtype": "float16"}, dn.InputError, ["'float16'", "float32, float64"]),
        ({"dtype": "int64"}, dn.InputError, ["'int64'", "float32, float64"]),
    ],
)
def test_constructor_refuses_bad_arguments(backend, kwargs, kind, words):
    with _raises(kind, *words):
        dn.DeepNet([3, 4, 4, 1], backend=backend, **kwargs)


@pytest.mark.parametrize(
    "dims, words",
    [
        ([3], ["at least two sizes", "[3]"]),
        ([], ["at least two sizes"]),
        ([3, 0, 1], ["layer_dims[1]", "positive integer", "0"]),
        ([3, -2, 1], ["layer_dims[1]", "positive integer", "-2"]),
        ([3, 2.0, 1], ["layer_dims[1]", "positive integer", "2.0"]),
        ([3, True, 1], ["layer_dims[1]", "positive integer", "True"]),
        ([3, "4", 1], ["layer_dims[1]", "positive integer"]),
        (5, ["list of layer sizes", "5"]),
        ("34", ["list of layer sizes"]),
    ],
)
def test_layer_dims_invalid(backend, dims, words):
    with _raises(dn.InputError, *words):
        dn.DeepNet(dims, backend=backend)


def test_layer_dims_accepts_numpy_integers(backend):
    net = dn.DeepNet(np.array([3, 2, 1]), backend=backend)
    assert net.layer_dims == (3, 2, 1)
    assert all(type(n) is int for n in net.layer_dims)


def test_cpu_device_array_refused_by_a_device1_network():
    cpu = dn.get_backend("array_api_strict")
    net = dn.DeepNet([3, 4, 1], dtype="float64", backend="array_api_strict", device="device1")
    X = cpu.asarray(np.ones((3, 2)))
    with _raises(dn.InputError, "X", "CPU_DEVICE", "device1", "net.to"):
        net.forward(X)
    AL, caches = net.forward(np.ones((3, 2)))  # the same data from NumPy is an explicit move
    with _raises(dn.InputError, "Y", "CPU_DEVICE", "net.to"):
        net.cost(AL, cpu.asarray(np.ones((1, 2))), caches)
    with _raises(dn.InputError, "W1", "CPU_DEVICE", "net.to"):
        net.set_params({k: cpu.asarray(np.ones(s)) for k, s in net.param_shapes().items()})


def test_a_network_pickles_onto_its_own_backend(backend, rng):
    import pickle

    net = dn.DeepNet([3, 5, 2], hidden="tanh", output="softmax", seed=4, backend=backend,
                     dtype="float64")
    X = rng.standard_normal((3, 7))
    net.fit(X, rng.integers(0, 2, 7), epochs=2, batch_size=3, progress=False)
    twin = pickle.loads(pickle.dumps(net))
    assert type(twin) is dn.DeepNet and twin.backend is net.backend
    assert twin.config() == net.config() and twin.history.cost == net.history.cost
    for key, value in net.params.items():
        np.testing.assert_array_equal(dn.to_numpy(twin.params[key]), dn.to_numpy(value))
    # the RNG travels too: the next dropout mask or shuffle is the same
    assert twin._rng.random() == net._rng.random()
