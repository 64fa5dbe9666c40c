"""CuPy on a device other than 0, on the CPU: ``tests/fake_cupy.py`` with two fake GPUs.

The stand-in keeps CuPy's rules: arrays are allocated on the thread's current device,
array-api-compat's creation functions drop ``device=``, and an operation whose operand
lives on another device than the current one fails (CuPy without peer access). So a
network on ``cupy:1`` must get every array onto device 1 and run every kernel there.
"""

from __future__ import annotations

import fake_cupy
import numpy as np
import pytest

import deepnet as dn
from deepnet import optimizers
from deepnet.step import train_step


@pytest.fixture
def fake():
    with fake_cupy.installed(n_devices=2) as f:
        yield f


def _arrays_of(net, opt=None):
    found = {f"param {k}": v for k, v in net.params.items()}
    if net._flat is not None:
        found["flat parameters"] = net._flat
    for m, ws in net.__dict__.get("_workspaces", {}).items():
        for name in ("A", "dA", "dW", "db"):
            for l, a in enumerate(getattr(ws, name)):
                if a is not None:
                    found[f"workspace[{m}].{name}[{l}]"] = a
        found[f"workspace[{m}].ones"] = ws.ones
        found.update({f"workspace[{m}].tmp[{n}]": a for n, a in ws.tmp.items()})
        found.update({f"workspace[{m}].zeros[{n}]": a for n, a in ws.zeros.items()})
    if opt is not None:
        for key, state in opt.state.items():
            found.update({f"optimizer {key}.{k}": v for k, v in state.items()
                          if hasattr(v, "_dev")})
    return found


def _data(seed=0, m=20):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((3, m)), (rng.random((2, m)) > 0.5).astype(float)


def test_creation_functions_honour_device(fake):
    xp = dn.get_backend("cupy", "1").xp
    one = fake.Device(1)
    made = {
        "zeros": xp.zeros((2, 3), dtype=xp.float32, device=one),
        "ones": xp.ones((2,), dtype=xp.float32, device=one),
        "empty": xp.empty((2,), dtype=xp.float32, device=one),
        "full": xp.full((), 1.5, dtype=xp.float32, device=one),
        "arange": xp.arange(4, dtype=xp.int64, device=one),
        "eye": xp.eye(2, dtype=xp.float32, device=one),
        "linspace": xp.linspace(0.0, 1.0, 3, dtype=xp.float32, device=one),
        "asarray": xp.asarray(np.ones(2), device=one),
    }
    fake._set_current(0)
    x = made["zeros"]
    made.update({name: getattr(xp, name)(x) for name in ("zeros_like", "ones_like",
                                                          "empty_like")})
    made["full_like"] = xp.full_like(x, 2.0)
    assert {name: a._dev for name, a in made.items()} == dict.fromkeys(made, 1)


def test_the_plain_compat_namespace_puts_arrays_on_device_0(fake):
    """The stand-in shows the bug deepnet's namespace fixes: array-api-compat's CuPy
    creation functions drop ``device=`` and allocate on the current device."""
    from array_api_compat import cupy as compat

    assert compat.zeros((2,), device=fake.Device(1))._dev == 0
    assert dn.get_backend("cupy", "1").xp.zeros((2,), device=fake.Device(1))._dev == 1


@pytest.mark.parametrize("how", ["DeepNet", "load", "to", "DeepNetClassifier.fit"])
def test_making_a_network_leaves_the_callers_device_current(fake, tmp_path, how):
    """Building a network on device 1 (its constructor, ``load``, ``to``, a scikit-learn
    estimator's ``fit``) must not move the caller's own CuPy work there."""
    if how.startswith("DeepNetClassifier"):
        pytest.importorskip("sklearn")

    X, Y = _data(m=12)
    if how == "load":
        dn.DeepNet([3, 5, 2], seed=1).save(tmp_path / "n.npz")
    before = fake.current()
    if how == "DeepNet":
        net = dn.DeepNet([3, 5, 2], backend="cupy", device="1")
    elif how == "load":
        net = dn.load(tmp_path / "n.npz", backend="cupy", device="1")
    elif how == "to":
        net = dn.DeepNet([3, 5, 2], seed=1).to("cupy", "1")
    else:
        from deepnet.sklearn import DeepNetClassifier

        est = DeepNetClassifier(hidden_layer_sizes=(4,), backend="cupy", device="1",
                                epochs=2).fit(X.T, Y[0])
        net = est.net_
    assert net._flat._dev == 1
    assert fake.current() == before == 0


def _fit_predict_step(net, fake, X, Y, reset: bool):
    """fit, predict and a bare step; with ``reset``, device 0 made current before each."""
    if reset:
        fake._set_current(0)
    net.fit(X, Y, epochs=2, batch_size=8, optimizer="adam", progress=False)
    if reset:
        fake._set_current(0)
    pred = net.predict(X)
    opt = optimizers.get("adam", 0.01)
    if reset:
        fake._set_current(0)
    train_step(net, net._check_X(X), net._check_Y(Y, X.shape[1]), opt)
    return pred, opt


def test_a_network_on_device_1_keeps_everything_there(fake):
    assert fake.current() == 0
    net = dn.DeepNet([3, 5, 4, 2], backend="cupy", device="1", keep_prob=0.8, l2=0.1,
                     seed=4)
    X, Y = _data()
    pred, opt = _fit_predict_step(net, fake, X, Y, reset=False)
    arrays = _arrays_of(net, opt)
    assert len(arrays) > 20
    assert {k: a._dev for k, a in arrays.items()} == dict.fromkeys(arrays, 1)
    Xd = net.xp.asarray(X, device=fake.Device(1))  # a device array in: one on device 1 out
    assert net.predict(Xd)._dev == 1

    ref = dn.DeepNet([3, 5, 4, 2], backend="numpy", keep_prob=0.8, l2=0.1, seed=4)
    ref.fit(X, Y, epochs=2, batch_size=8, optimizer="adam", progress=False)
    np.testing.assert_array_equal(dn.to_numpy(pred), dn.to_numpy(ref.predict(X)))


def test_fit_and_predict_run_on_the_networks_device_whatever_is_current(fake):
    net = dn.DeepNet([3, 5, 4, 2], backend="cupy", device="1", keep_prob=0.8, seed=4)
    X, Y = _data()
    _, opt = _fit_predict_step(net, fake, X, Y, reset=True)
    arrays = _arrays_of(net, opt)
    assert {k: a._dev for k, a in arrays.items()} == dict.fromkeys(arrays, 1)


def test_two_networks_on_two_devices_train_in_turn(fake):
    """No dropout: after the first step nothing is created, and only ``train_step``'s
    ``Backend.activate()`` makes the right device current."""
    nets = [dn.DeepNet([3, 5, 2], backend="cupy", device=str(d), seed=d) for d in (0, 1)]
    X, Y = _data(m=12)
    data = [(n._check_X(X), n._check_Y(Y, 12)) for n in nets]
    opts = [optimizers.get("momentum", 0.05) for _ in nets]
    for _ in range(3):
        for net, (Xd, Yd), opt in zip(nets, data, opts):
            train_step(net, Xd, Yd, opt)  # with the other device current before
    for d, net in enumerate(nets):
        arrays = _arrays_of(net, opts[d])
        assert {k: a._dev for k, a in arrays.items()} == dict.fromkeys(arrays, d)


def test_a_step_leaves_the_callers_device_current(fake):
    net = dn.DeepNet([3, 4, 2], backend="cupy", device="1")
    X, Y = _data(m=6)
    Xd, Yd = net._check_X(X), net._check_Y(Y, 6)
    fake._set_current(0)
    train_step(net, Xd, Yd, optimizers.get("gd", 0.1))
    assert fake.current() == 0


def test_the_stand_in_refuses_mixed_devices(fake):
    xp = dn.get_backend("cupy", "1").xp
    x = xp.ones((2,), dtype=xp.float32, device=fake.Device(1))
    fake._set_current(0)
    with pytest.raises(fake_cupy.DeviceMismatch, match=r"resides \(1\).*current device \(0\)"):
        x + 1.0


@pytest.mark.parametrize("rule", ["momentum", "rmsprop", "adam"])
def test_the_fused_cupy_updates_equal_the_portable_one(fake, rule):
    """deepnet.fused's ElementwiseKernels, run by the stand-in (NumPy evaluating their
    statements), against the portable update, on device 1."""
    from deepnet.backend import fused

    X, Y = _data(m=10)
    nets, opts = [], []
    for use_fused in (True, False):
        net = dn.DeepNet([3, 6, 2], backend="cupy", device="1", dtype="float64", seed=5)
        opt = optimizers.get(rule, 0.01)
        opt.fused = use_fused
        for _ in range(3):
            train_step(net, net._check_X(X), net._check_Y(Y, 10), opt)
        nets.append(net)
        opts.append(opt)
    assert fused.kernel(rule, nets[0]._flat) is not None
    for key, value in nets[1].params.items():
        np.testing.assert_allclose(dn.to_numpy(nets[0].params[key]), dn.to_numpy(value),
                                   rtol=1e-13, atol=1e-15)
    assert nets[0]._flat._dev == 1
